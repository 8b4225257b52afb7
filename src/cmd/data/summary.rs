//! `kerblam data` without a subcommand: how much data the project holds, as Kerblam! 1.x prints
//! it (sizes and file counts of the intermediate, input and output dirs, the total, what
//! `kerblam data clean -r` would free, the remote files present, the files not yet downloaded),
//! then each remote file with its status.

use crate::cli::GlobalArgs;
use crate::cmd::plan::load_project;
use crate::exit;
use crate::output;

use super::files::{self, DataFile, size, total};

pub fn run(global: &GlobalArgs, allow_unknown: bool) -> miette::Result<u8> {
    let project = load_project(global, allow_unknown)?;
    let l = files::list(&project);
    for u in &l.unreadable {
        output::warn(format!("cannot read {u}; its files are not counted"));
    }
    let line = |label: &str, (bytes, n): (u64, usize)| format!("{label}\t{} [{n}]", size(bytes));
    let under = |dir: &str| {
        let inner = dir
            .strip_prefix(&format!("{}/", l.intermediate_dir))
            .filter(|_| l.intermediate_dir != ".")
            .unwrap_or(dir);
        format!("└── {inner}")
    };
    outln!(
        "{}",
        line(&format!("./{}", l.intermediate_dir), total(&l.intermediate))
    );
    outln!("{}", line(&under(&l.input_dir), total(&l.input)));
    outln!("{}", line(&under(&l.output_dir), total(&l.output)));
    outln!("──────────────────────");
    let all = total(l.intermediate.iter().chain(&l.input).chain(&l.output));
    outln!("{}", line("Total", all));
    let cleanable: Vec<&DataFile> = l
        .intermediate
        .iter()
        .chain(&l.output)
        .chain(l.fetched())
        .filter(|f| !f.hidden())
        .collect();
    let (clean_bytes, clean_n) = total(cleanable.iter().copied());
    let pct = if all.0 == 0 {
        0.0
    } else {
        clean_bytes as f64 / all.0 as f64 * 100.0
    };
    outln!("└── cleanup\t{} [{clean_n}] ({pct:.2}%)", size(clean_bytes));
    outln!("{}", line("└── remote", total(l.fetched())));
    let missing = l.remote.iter().filter(|r| r.size.is_none()).count();
    if missing == 1 {
        outln!("There is one undownloaded file.");
    } else {
        outln!("There are {missing} undownloaded files.");
    }
    if !l.remote.is_empty() {
        outln!();
        outln!("remote files:");
        for r in &l.remote {
            let status = match r.size {
                Some(b) => format!("present\t{}", size(b)),
                None => "missing\t-".to_string(),
            };
            let url = if r.fetchable() {
                r.url.as_str()
            } else {
                "_ (cannot be fetched: precious)"
            };
            outln!("  {status}\t{}\t<- {url}", r.rel);
        }
    }
    Ok(exit::OK)
}
