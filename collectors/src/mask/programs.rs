//! Short options that carry a credential only for the program that reads them.
//!
//! Owns the table of programs whose short options take a password or `user:password`
//! (`mysql -pSECRET`, `sshpass -p pw`, `curl -u admin:secret`) and the context that says which
//! program the current word belongs to. Everywhere else `-p` is a plugin or a port
//! (`pytest -p no:cacheprovider`, `ssh -p 22`, `psql -p 5432`) and `-u` a user, so a short option
//! is never masked by its letter alone.
//!
//! The context starts at a word whose base name is a listed program (`/usr/bin/mysql`, `mysql` in
//! `sh -c "… | mysql -pX"`, `kubectl exec db -- mysql -pX`) and ends at a shell separator (`|`,
//! `&&`, `;`), at another listed program, or, for a program whose options all come before its
//! operands (`sshpass`), at its first operand: `sshpass -p pw ssh -p 22 host` masks `pw`, not `22`.

/// How much of a credential value is secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Value {
    /// All of it.
    Whole,
    /// `user:password`: the password; the user too when the password is empty (`-u TOKEN:`).
    /// A value without a colon is a user name alone (curl then asks for the password).
    UserPass,
}

/// One option that takes a credential.
struct Credential {
    /// `-p`, `--user`.
    option: &'static str,
    /// `-pSECRET`, `--user=admin:secret`: the value is attached (after `=` for a long option).
    attached: bool,
    /// `-p SECRET`: the value is the next word.
    separate: bool,
    value: Value,
}

const fn both(option: &'static str, value: Value) -> Credential {
    Credential {
        option,
        attached: true,
        separate: true,
        value,
    }
}

struct Program {
    /// Whether a base name is this program.
    is: fn(&str) -> bool,
    /// The subcommand the options belong to (`docker login -p`): another one ends the context.
    subcommand: Option<&'static str>,
    /// Options come before operands, and the first operand ends the context (`sshpass`).
    options_first: bool,
    /// Options of this program that take a value which is not a credential, so that the value
    /// is not taken for its first operand (`sshpass -f file ssh …`).
    value_options: &'static [&'static str],
    credentials: &'static [Credential],
}

/// The programs and their credential options, from each one's manual.
const PROGRAMS: &[Program] = &[
    // mysql(1), mariadb(1) and their tools: `-p[password]` takes the password attached; `-p`
    // alone asks for it, and the next word is then the database, which stays readable.
    Program {
        is: |name| name.starts_with("mysql") || name.starts_with("mariadb"),
        subcommand: None,
        options_first: false,
        value_options: &[],
        credentials: &[Credential {
            option: "-p",
            attached: true,
            separate: false,
            value: Value::Whole,
        }],
    },
    // sshpass(1): `-p password`, attached or not; its options end at the command it runs.
    Program {
        is: |name| name == "sshpass",
        subcommand: None,
        options_first: true,
        value_options: &["-f", "-d", "-P"],
        credentials: &[both("-p", Value::Whole)],
    },
    // curl(1): `-u, --user <user:password>`, `-U, --proxy-user`, `-E, --cert <cert[:passwd]>`,
    // and `-b, --cookie <data|filename>`. wget(1) has `--user`; `-u` is masked for it as well.
    Program {
        is: |name| matches!(name, "curl" | "wget" | "wget2"),
        subcommand: None,
        options_first: false,
        value_options: &[],
        credentials: &[
            both("-u", Value::UserPass),
            both("--user", Value::UserPass),
            both("-U", Value::UserPass),
            both("--proxy-user", Value::UserPass),
            both("-E", Value::UserPass),
            both("--cert", Value::UserPass),
            both("-b", Value::Whole),
        ],
    },
    // redis-cli(1): `-a <password>`.
    Program {
        is: |name| name == "redis-cli",
        subcommand: None,
        options_first: false,
        value_options: &[],
        credentials: &[both("-a", Value::Whole)],
    },
    // mongosh and the MongoDB database tools: `-p, --password <password>`.
    Program {
        is: |name| name.starts_with("mongo"),
        subcommand: None,
        options_first: false,
        value_options: &[],
        credentials: &[both("-p", Value::Whole)],
    },
    // OpenLDAP's ldapsearch(1) and friends: `-w passwd`.
    Program {
        is: |name| name.starts_with("ldap"),
        subcommand: None,
        options_first: false,
        value_options: &[],
        credentials: &[both("-w", Value::Whole)],
    },
    // `docker login -p`, and the same in podman, nerdctl, buildah, skopeo and oras. Elsewhere
    // (`docker run -p 8080:80`) `-p` publishes a port.
    Program {
        is: |name| {
            matches!(
                name,
                "docker" | "podman" | "nerdctl" | "buildah" | "skopeo" | "oras"
            )
        },
        subcommand: Some("login"),
        options_first: false,
        value_options: &[],
        credentials: &[both("-p", Value::Whole)],
    },
    // twine(1): `-p, --password`.
    Program {
        is: |name| name == "twine",
        subcommand: None,
        options_first: false,
        value_options: &[],
        credentials: &[both("-p", Value::Whole)],
    },
    // `gh secret set NAME --body value` (`-b`).
    Program {
        is: |name| name == "gh",
        subcommand: Some("secret"),
        options_first: false,
        value_options: &[],
        credentials: &[both("-b", Value::Whole), both("--body", Value::Whole)],
    },
];

/// What a word is, for the program whose context it stands in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// `-pSECRET`, `--user=a:b`: the credential starts at this byte of the word.
    Attached(usize, Value),
    /// `-p`: the credential is the next word.
    Separate(Value),
}

/// Which listed program the current word belongs to, if any.
#[derive(Default)]
pub(super) struct Context {
    program: Option<&'static Program>,
    /// Still before the subcommand (`docker … login`) or, for `sshpass`, among its options.
    in_options: bool,
    /// The next word is the value of a non-credential option (`sshpass -f file`).
    skip_next: bool,
}

impl Context {
    /// Whether `word` is a credential option of the current program.
    pub(super) fn option(&self, word: &str) -> Option<Found> {
        let program = self.program?;
        // sshpass's options are its own only before its command; docker's `-p` is login's only
        // after `login`.
        let live = if program.options_first {
            self.in_options
        } else {
            !self.in_options
        };
        if !live || !word.starts_with('-') {
            return None;
        }
        program.credentials.iter().find_map(|credential| {
            let rest = word.strip_prefix(credential.option)?;
            if rest.is_empty() {
                return credential
                    .separate
                    .then_some(Found::Separate(credential.value));
            }
            let long = credential.option.starts_with("--");
            let value_at = match rest.strip_prefix('=') {
                Some(_) if long => credential.option.len() + 1,
                // `--user-agent` is another option, not `--user` with a value.
                None if long => return None,
                _ => credential.option.len(),
            };
            credential
                .attached
                .then_some(Found::Attached(value_at, credential.value))
        })
    }

    /// Moves the context past `word`, a word that was not a credential value.
    pub(super) fn advance(&mut self, word: &str) {
        if is_separator(word) {
            *self = Self::default();
            return;
        }
        let base = word.rsplit('/').next().unwrap_or(word);
        if let Some(program) = PROGRAMS.iter().find(|p| (p.is)(base)) {
            *self = Self {
                program: Some(program),
                in_options: program.options_first || program.subcommand.is_some(),
                skip_next: false,
            };
            return;
        }
        let Some(program) = self.program else {
            return;
        };
        if !self.in_options || word.starts_with('-') {
            self.skip_next = self.in_options && program.value_options.contains(&word);
            return;
        }
        if std::mem::take(&mut self.skip_next) {
            return;
        }
        // The first operand: the subcommand, or the command sshpass runs.
        if program.subcommand == Some(word) {
            self.in_options = false;
        } else {
            *self = Self::default();
        }
    }
}

/// `|`, `||`, `&&`, `;`, `&`, or a word that ends a shell command (`x;`).
fn is_separator(word: &str) -> bool {
    matches!(word, "|" | "||" | "&&" | "&" | "|&") || word.ends_with(';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(words: &[&str]) -> Context {
        let mut context = Context::default();
        for word in words {
            context.advance(word);
        }
        context
    }

    #[test]
    fn short_options_are_credentials_only_for_their_program() {
        let cases: &[(&[&str], &str, Option<Found>)] = &[
            (
                &["mysql"],
                "-pS3cret",
                Some(Found::Attached(2, Value::Whole)),
            ),
            (&["mysql"], "-p", None),
            (
                &["/usr/bin/mariadb-dump"],
                "-pS",
                Some(Found::Attached(2, Value::Whole)),
            ),
            (&["sshpass"], "-p", Some(Found::Separate(Value::Whole))),
            (&["sshpass", "-p", "x", "ssh"], "-p", None),
            (
                &["sshpass", "-f", "file", "-e"],
                "-p",
                Some(Found::Separate(Value::Whole)),
            ),
            (&["curl"], "-u", Some(Found::Separate(Value::UserPass))),
            (
                &["curl"],
                "--user=a:b",
                Some(Found::Attached(7, Value::UserPass)),
            ),
            (&["curl"], "--user-agent=x", None),
            (&["docker", "run"], "-p", None),
            (
                &["docker", "login"],
                "-p",
                Some(Found::Separate(Value::Whole)),
            ),
            (&["mysql", "|", "tee"], "-pX", None),
            (&["pytest"], "-p", None),
            (&["ssh"], "-p", None),
            (&["psql"], "-p", None),
            (&[], "-p", None),
        ];
        for (before, word, want) in cases {
            assert_eq!(
                &context(before).option(word),
                want,
                "{before:?} then {word}"
            );
        }
    }
}
