//! [`Person`]: an author as given (`Jane Doe <jane@example.org>`), split for CITATION.cff.

/// An author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The name as given, without the email (`Jane Doe`).
    pub name: String,
    /// The email, from `<...>`, when given.
    pub email: Option<String>,
}

impl Person {
    /// Parses `Name`, `Name <email>` or `<email>`; `None` when nothing is left.
    pub fn parse(s: &str) -> Option<Person> {
        let s = s.trim();
        let (name, email) = match (s.find('<'), s.rfind('>')) {
            (Some(open), Some(close)) if open < close => (
                format!("{} {}", &s[..open], &s[close + 1..]),
                Some(s[open + 1..close].trim().to_string()).filter(|e| !e.is_empty()),
            ),
            _ => (s.to_string(), None),
        };
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() && email.is_none() {
            return None;
        }
        Some(Person { name, email })
    }

    /// CITATION.cff's `given-names` and `family-names`: the last word is the family name, the rest
    /// the given names (`Jane Q. Doe` → `Jane Q.`, `Doe`). A single word is a family name.
    pub fn cff_names(&self) -> (Option<&str>, Option<&str>) {
        match self.name.rsplit_once(' ') {
            Some((given, family)) => (Some(given), Some(family)),
            None if self.name.is_empty() => (None, None),
            None => (None, Some(self.name.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails_are_split_as_written() {
        let p = Person::parse("  Jane Q.  Doe <jane@example.org> ").unwrap();
        assert_eq!(p.name, "Jane Q. Doe");
        assert_eq!(p.email.as_deref(), Some("jane@example.org"));
        assert_eq!(p.cff_names(), (Some("Jane Q."), Some("Doe")));
        let p = Person::parse("Hedmad").unwrap();
        assert_eq!(p.cff_names(), (None, Some("Hedmad")));
        assert_eq!(p.email, None);
        let p = Person::parse("<a@b.c>").unwrap();
        assert_eq!((p.name.as_str(), p.email.as_deref()), ("", Some("a@b.c")));
        assert_eq!(Person::parse("  "), None);
        assert_eq!(Person::parse("<>"), None);
    }
}
