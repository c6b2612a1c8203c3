// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * exceptions:page_fault_user sampled in the kernel: one fault in `one_in` per CPU is
 * written to a ring buffer, the others cost a counter increment. The perf tracepoint
 * builds a whole record on every fault before it can skip it (a fault loop ran at
 * 0.85x under it); a raw tracepoint program gets the arguments as they are.
 *
 * Rebuild (the object is committed, so a cargo build needs no clang):
 *   src/concepts/page_faults/bpf/build.sh
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The record syslens_probe::bpf reads: its header, then the tracepoint's fields in
 * the layout FORMAT in events.rs describes. */
struct sample {
	__u32 tgid;
	__u32 tid;
	__u64 ns;
	__u32 cpu;
	__u32 pad;
	__u64 period;
	__u64 address;
	__u64 error_code;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} samples SEC(".maps");

/* Per CPU: [0] faults since the last sample, [1] samples the full ring dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Set by the loader before the program is verified. */
const volatile __u64 one_in = 16;

/* Wake the reader once this much is waiting, not on every sample: about 300
 * samples, read while the process is still there to classify its faults by mapping. */
#define WAKE_AT (16 * 1024)

SEC("raw_tracepoint/page_fault_user")
int page_fault_user(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 key = 0;
	__u64 *hits = bpf_map_lookup_elem(&counters, &key);
	if (!hits)
		return 0;
	if (++*hits < one_in)
		return 0;
	*hits = 0;
	struct sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s) {
		key = 1;
		__u64 *lost = bpf_map_lookup_elem(&counters, &key);
		if (lost)
			*lost += 1;
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	s->tgid = id >> 32;
	s->tid = (__u32)id;
	s->ns = bpf_ktime_get_ns();
	s->cpu = bpf_get_smp_processor_id();
	s->pad = 0;
	s->period = one_in;
	/* TP_PROTO(unsigned long address, struct pt_regs *regs, unsigned long error_code) */
	s->address = ctx->args[0];
	s->error_code = ctx->args[2];
	__u64 flags = bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= WAKE_AT
		? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(s, flags);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
