//! Which container, pod and systemd unit a process belongs to, from its cgroup path.
//! Runtimes name their cgroups after the container id, wherever in the hierarchy they
//! sit and on v1 and v2 alike: docker (`/docker/<id>` with the cgroupfs driver,
//! `docker-<id>.scope` with systemd), containerd's CRI plugin (`cri-containerd-<id>.scope`),
//! CRI-O (`crio-<id>.scope`), podman (`libpod-<id>.scope`), and the kubelet's pods under
//! both cgroup drivers (`kubepods/<qos>/pod<uid>/<id>`, or
//! `kubepods-<qos>-pod<uid_with_underscores>.slice/...`). The path is a string any
//! process could choose for a cgroup it created: this only reads names, it trusts
//! nothing else.

use serde::Serialize;

/// A container runtime, as its cgroup names tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// Docker (dockerd with containerd underneath).
    Docker,
    /// containerd's CRI plugin (Kubernetes nodes).
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman.
    Podman,
    /// A kubelet pod whose runtime the cgroup does not name (cgroupfs driver).
    Kubernetes,
}

impl Runtime {
    /// The runtime as text shows it.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Kubernetes => "kubernetes",
        }
    }
}

/// A Kubernetes pod's quality-of-service class (the kubelet's cgroup tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QosClass {
    /// Requests equal limits: directly under `kubepods`.
    Guaranteed,
    /// `kubepods/burstable`.
    Burstable,
    /// `kubepods/besteffort`.
    BestEffort,
}

/// Where a cgroup path places a process: its container, pod and systemd unit, each when
/// the path names one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The container runtime.
    pub runtime: Option<Runtime>,
    /// The container id in full (64 hex digits for docker, containerd and CRI-O).
    pub container_id: Option<String>,
    /// The pod's UID with its dashes (the systemd driver writes them as underscores).
    pub pod_uid: Option<String>,
    /// The pod's QoS class.
    pub qos: Option<QosClass>,
    /// The innermost systemd unit (`nginx.service`, `session-3.scope`) that is not the
    /// container's own scope.
    pub unit: Option<String>,
    /// The innermost slice (`user-1000.slice`, `system.slice`).
    pub slice: Option<String>,
}

impl Placement {
    /// The container id as text shows it: its first 12 characters, like `docker ps`.
    pub fn short_id(&self) -> Option<&str> {
        self.container_id
            .as_deref()
            .map(|id| id.get(..12).unwrap_or(id))
    }

    /// "container 3f2a9c1b7d4e (docker)", "unit nginx.service", or None on the host.
    pub fn describe(&self) -> Option<String> {
        match (self.short_id(), self.runtime, &self.unit) {
            (Some(id), Some(rt), _) => Some(format!("container {id} ({})", rt.name())),
            (Some(id), None, _) => Some(format!("container {id}")),
            (None, _, Some(unit)) => Some(format!("unit {unit}")),
            _ => None,
        }
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The id of a systemd scope a runtime made for a container, with the runtime.
fn scope_container(component: &str) -> Option<(Runtime, &str)> {
    let name = component.strip_suffix(".scope")?;
    const PREFIXES: [(&str, Runtime); 4] = [
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("libpod-", Runtime::Podman),
    ];
    PREFIXES.iter().find_map(|(prefix, rt)| {
        let id = name.strip_prefix(prefix)?;
        is_container_id(id).then_some((*rt, id))
    })
}

/// A kubelet pod component: `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid>.slice`
/// (systemd, dashes of the uid as underscores).
fn pod_component(component: &str) -> Option<(String, QosClass)> {
    if let Some(uid) = component.strip_prefix("pod") {
        return is_uid(uid).then(|| (uid.to_owned(), QosClass::Guaranteed));
    }
    let name = component.strip_suffix(".slice")?;
    let rest = name.strip_prefix("kubepods-")?;
    let (qos, uid) = match rest.split_once("-pod") {
        Some(("burstable", uid)) => (QosClass::Burstable, uid),
        Some(("besteffort", uid)) => (QosClass::BestEffort, uid),
        _ => (QosClass::Guaranteed, rest.strip_prefix("pod")?),
    };
    let uid = uid.replace('_', "-");
    is_uid(&uid).then_some((uid, qos))
}

fn is_uid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Reads the placement from a cgroup path as /proc/PID/cgroup writes it.
pub fn placement(path: &str) -> Placement {
    let mut p = Placement::default();
    let mut in_kubepods = false;
    let mut qos_dir = None;
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in parts.iter().enumerate() {
        if let Some((rt, id)) = scope_container(c) {
            p.runtime = Some(rt);
            p.container_id = Some(id.to_owned());
            continue;
        }
        if *c == "kubepods" || *c == "kubepods.slice" {
            in_kubepods = true;
            continue;
        }
        if in_kubepods {
            match *c {
                "burstable" => qos_dir = Some(QosClass::Burstable),
                "besteffort" => qos_dir = Some(QosClass::BestEffort),
                _ => {}
            }
            if let Some((uid, qos)) = pod_component(c) {
                p.pod_uid = Some(uid);
                p.qos = Some(qos_dir.unwrap_or(qos));
                continue;
            }
            // The cgroupfs driver names the container by its bare id below the pod.
            if p.pod_uid.is_some() && p.container_id.is_none() && is_container_id(c) {
                p.container_id = Some((*c).to_owned());
                continue;
            }
        }
        // docker's cgroupfs driver: /docker/<id>.
        if i > 0 && parts[i - 1] == "docker" && is_container_id(c) {
            p.runtime = Some(Runtime::Docker);
            p.container_id = Some((*c).to_owned());
            continue;
        }
        if p.container_id.is_none() && (c.ends_with(".service") || c.ends_with(".scope")) {
            p.unit = Some((*c).to_owned());
        }
        if c.ends_with(".slice") && !c.starts_with("kubepods") {
            p.slice = Some((*c).to_owned());
        }
    }
    if p.pod_uid.is_some() && p.runtime.is_none() {
        p.runtime = Some(Runtime::Kubernetes);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";

    #[test]
    fn docker_under_both_drivers() {
        let p = placement(&format!("/docker/{ID}"));
        assert_eq!(p.runtime, Some(Runtime::Docker));
        assert_eq!(p.container_id.as_deref(), Some(ID));
        assert_eq!(p.short_id(), Some("3f2a9c1b7d4e"));
        assert_eq!(
            p.describe().as_deref(),
            Some("container 3f2a9c1b7d4e (docker)")
        );
        let p = placement(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(p.runtime, Some(Runtime::Docker));
        assert_eq!(p.container_id.as_deref(), Some(ID));
        assert_eq!(p.unit, None, "the container's own scope is not its unit");
        assert_eq!(p.slice.as_deref(), Some("system.slice"));
        // Nested deeper (docker in a delegated subtree, as with a v1 test cgroup).
        let p = placement(&format!("/syslens-test-1/docker/{ID}"));
        assert_eq!(p.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn cri_runtimes_and_podman() {
        for (path, rt) in [
            (format!("/system.slice/cri-containerd-{ID}.scope"), Runtime::Containerd),
            (format!("/machine.slice/crio-{ID}.scope"), Runtime::CriO),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"),
                Runtime::Podman,
            ),
        ] {
            let p = placement(&path);
            assert_eq!(p.runtime, Some(rt), "{path}");
            assert_eq!(p.container_id.as_deref(), Some(ID), "{path}");
        }
        let p = placement(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        ));
        assert_eq!(p.unit.as_deref(), Some("user@1000.service"));
    }

    #[test]
    fn kubelet_pods_under_both_drivers() {
        let uid = "8d1c2b7a-4f3e-4a5b-9c6d-0e1f2a3b4c5d";
        let p = placement(&format!("/kubepods/burstable/pod{uid}/{ID}"));
        assert_eq!(p.pod_uid.as_deref(), Some(uid));
        assert_eq!(p.qos, Some(QosClass::Burstable));
        assert_eq!(p.container_id.as_deref(), Some(ID));
        assert_eq!(p.runtime, Some(Runtime::Kubernetes));
        let p = placement(&format!("/kubepods/pod{uid}/{ID}"));
        assert_eq!(p.qos, Some(QosClass::Guaranteed));
        let under = uid.replace('-', "_");
        let p = placement(&format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{under}.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(p.pod_uid.as_deref(), Some(uid));
        assert_eq!(p.qos, Some(QosClass::BestEffort));
        assert_eq!(p.runtime, Some(Runtime::Containerd));
        assert_eq!(p.container_id.as_deref(), Some(ID));
        let p = placement(&format!(
            "/kubepods.slice/kubepods-pod{under}.slice/crio-{ID}.scope"
        ));
        assert_eq!(p.qos, Some(QosClass::Guaranteed));
        assert_eq!(p.runtime, Some(Runtime::CriO));
    }

    #[test]
    fn systemd_units_and_the_host() {
        let p = placement("/system.slice/nginx.service");
        assert_eq!(p.unit.as_deref(), Some("nginx.service"));
        assert_eq!(p.container_id, None);
        assert_eq!(p.describe().as_deref(), Some("unit nginx.service"));
        let p = placement("/user.slice/user-1000.slice/session-3.scope");
        assert_eq!(p.unit.as_deref(), Some("session-3.scope"));
        assert_eq!(p.slice.as_deref(), Some("user-1000.slice"));
        assert_eq!(placement("/"), Placement::default());
        assert_eq!(placement("/").describe(), None);
        // Look-alikes are not containers.
        assert_eq!(placement("/docker/notanid").container_id, None);
        assert_eq!(placement("/system.slice/docker-x.scope").container_id, None);
        assert_eq!(placement("/kubepods/podnope/abc").pod_uid, None);
    }
}
