//! The syslens command: makes Linux system-programming concepts visible (labs, lenses, doctor, explain).

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use syslens::cli::{run, Cli, Status};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result =
        run(cli, &mut out, &mut io::stderr()).and_then(|status| out.flush().map(|_| status));
    match result {
        Ok(status) => ExitCode::from(status.code()),
        // `syslens ... | head`: the reader left; that is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "syslens: {e}");
            ExitCode::from(Status::Usage.code())
        }
    }
}
