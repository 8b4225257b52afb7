//! kerblam refuses exactly the TOML that Kerblam! 1.x cannot read.
//!
//! kerblam parses TOML 1.1 (toml_edit 0.25) and reports what only 1.1 allows
//! (`toml_dialect::toml_1_1_syntax`); Kerblam! 1.x reads with `toml` 0.8, a TOML 1.0 parser. Over
//! thousands of documents (the manifests of the corpus and TOML snippets, mutated), whenever
//! kerblam's parser accepts a document, Kerblam! 1.x's parser accepts it exactly when kerblam finds
//! no TOML 1.1 syntax in it.

use std::path::Path;

use kerblam_compiler::SourceFile;
use kerblam_compiler::toml_dialect::toml_1_1_syntax;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<String> {
    let mut out: Vec<String> = [
        "a = \"x\\ey\"\n",
        "a = \"\\x41\"\n\"\\x42\" = 1\n",
        "a = \"\"\"\n\\e\\\\e\"\"\"\n",
        "t = { a = 1, b = \"x\" }\n",
        "t = { a = 1, }\n",
        "t = {\n  a = 1,\n  b = [\n    1,\n    2,\n  ],\n}\n",
        "t = { a = 1 # c\n}\n",
        "t = { a = { b = 1 }, c = [1, 2] }\n",
        "d = 1979-05-27T07:32:00Z\nt = 07:32:00\nl = 1979-05-27 07:32:00.5\n",
        "d = 1979-05-27T07:32Z\nt = 07:32\n",
        "[meta]\nversion = \"1.0\"\n[data.remote]\n\"https://e.org/a\" = 'a.csv'\n",
        "[a]\nb.c = 1\n[[d]]\ne = '''x\\e'''\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    for kind in ["valid", "invalid"] {
        let mut names: Vec<_> = std::fs::read_dir(corpus.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            if let Ok(text) = std::fs::read_to_string(&p) {
                out.push(text);
            }
        }
    }
    out
}

fn kerblam_parses(text: &str) -> bool {
    text.parse::<toml_edit::DocumentMut>().is_ok()
}

fn kerblam1_parses(text: &str) -> bool {
    text.parse::<kerblam1_toml::Table>().is_ok()
}

fn has_toml_1_1(text: &str) -> bool {
    !toml_1_1_syntax(&SourceFile::new("m.toml", text)).is_empty()
}

#[test]
fn every_seed_is_judged_as_kerblam_1_judges_it() {
    let mut judged = 0;
    for seed in seeds() {
        if !kerblam_parses(&seed) {
            continue;
        }
        judged += 1;
        assert_eq!(
            kerblam1_parses(&seed),
            !has_toml_1_1(&seed),
            "Kerblam! 1.x and kerblam disagree on {seed:?}"
        );
    }
    assert!(judged > 40, "{judged}");
}

#[test]
fn mutated_documents_are_judged_as_kerblam_1_judges_them() {
    let seeds = seeds();
    let alphabet: &[&str] = &[
        "{",
        "}",
        "{ ",
        " }",
        ",",
        ", ",
        "\n",
        "# c\n",
        "[",
        "]",
        "=",
        " = ",
        "\"",
        "'",
        "\\e",
        "\\x41",
        "\\x",
        "\\",
        "\\\\",
        "e",
        "x",
        "07:32",
        ":00",
        ":",
        "1979-05-27",
        "T",
        " ",
        "Z",
        "-07:00",
        ".5",
        "a",
        "b.c",
        "1",
        "\"\"\"",
        "'''",
        "\r\n",
        "\t",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut accepted, mut toml_1_1) = (0, 0);
    for round in 0..20_000 {
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if rng.below(4) == 0 {
                let mut end = (at + 1 + rng.below(6)).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, "");
            } else {
                text.insert_str(at, alphabet[rng.below(alphabet.len())]);
            }
        }
        if !kerblam_parses(&text) {
            continue;
        }
        accepted += 1;
        let new = has_toml_1_1(&text);
        toml_1_1 += usize::from(new);
        assert_eq!(
            kerblam1_parses(&text),
            !new,
            "round {round}: Kerblam! 1.x and kerblam disagree on {text:?} (TOML 1.1 syntax found: {new})"
        );
    }
    eprintln!(
        "{accepted} mutated documents parsed by kerblam, {toml_1_1} of them refused as TOML 1.1, \
         all as Kerblam! 1.x judges them"
    );
    assert!(accepted > 3000 && toml_1_1 > 300, "{accepted} {toml_1_1}");
}
