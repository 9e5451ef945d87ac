//! The registry's state, rebuilt by replaying `_schemas` (`apply`), and its write
//! operations, which check a request against the state and return the records to append
//! with the answer: no I/O, so the same code serves replay, live requests and tests.

use std::collections::{BTreeMap, BTreeSet};

use crate::compatibility::{CompatibilityLevel, Previous};
use crate::error::RegistryError;
use crate::records::{
    ClearSubjectValue, ConfigValue, ContextValue, DeleteSubjectValue, ModeValue, Record, RecordKey,
    SchemaReference, SchemaValue, Write, DEFAULT_TENANT,
};
use crate::schema::{ParsedSchema, SchemaType};

/// The context of subjects written without one.
pub const DEFAULT_CONTEXT: &str = ".";

/// The context a subject lives in: `:.ctx:name` is `name` in context `.ctx`.
pub fn context_of(subject: &str) -> &str {
    subject
        .strip_prefix(':')
        .and_then(|rest| rest.split_once(':'))
        .map(|(context, _)| context)
        .filter(|c| c.starts_with('.'))
        .unwrap_or(DEFAULT_CONTEXT)
}

/// A subject name with its context prefix, as keys and responses carry it.
pub fn qualify(context: &str, name: &str) -> String {
    if context == DEFAULT_CONTEXT {
        name.to_owned()
    } else {
        format!(":{context}:{name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    ReadOnlyOverride,
    Import,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }

    pub fn from_name(name: &str) -> Result<Mode, RegistryError> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "READWRITE" => Mode::ReadWrite,
            "READONLY" => Mode::ReadOnly,
            "READONLY_OVERRIDE" => Mode::ReadOnlyOverride,
            "IMPORT" => Mode::Import,
            _ => return Err(RegistryError::InvalidMode),
        })
    }
}

/// What a schema id stands for, in its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdEntry {
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<SchemaReference>,
}

/// A registration request, as `POST /subjects/{subject}/versions` carries it.
#[derive(Debug, Clone, Default)]
pub struct NewSchema {
    pub schema: String,
    pub schema_type: Option<String>,
    pub references: Vec<SchemaReference>,
    /// Caller-chosen id and version, in IMPORT mode.
    pub id: Option<i32>,
    pub version: Option<i32>,
    pub metadata: Option<serde_json::Value>,
    pub rule_set: Option<serde_json::Value>,
}

/// A version selector: a number or `latest` (also `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    Number(i32),
    Latest,
}

impl VersionSelector {
    pub fn parse(text: &str) -> Result<VersionSelector, RegistryError> {
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionSelector::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(VersionSelector::Latest),
            Ok(n) if n >= 1 => Ok(VersionSelector::Number(n)),
            _ => Err(RegistryError::InvalidVersion(text.to_owned())),
        }
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    /// Qualified subject -> version -> value (soft-deleted versions included).
    subjects: BTreeMap<String, BTreeMap<i32, SchemaValue>>,
    /// (context, id) -> the versions that carry it.
    ids: BTreeMap<(String, i32), BTreeSet<(String, i32)>>,
    /// The largest id ever seen per context: ids are never handed out twice.
    max_ids: BTreeMap<String, i32>,
    /// "" for the global config; else a qualified subject or `:.ctx:` for a context.
    configs: BTreeMap<String, ConfigValue>,
    modes: BTreeMap<String, Mode>,
    /// Contexts other than the default one, as CONTEXT records created them.
    contexts: BTreeSet<String>,
}

/// Where a record of `_schemas` leaves the registry (the answer of an operation).
pub struct Outcome<T> {
    pub writes: Vec<Write>,
    pub answer: T,
}

impl<T> Outcome<T> {
    fn nothing(answer: T) -> Outcome<T> {
        Outcome {
            writes: Vec::new(),
            answer,
        }
    }
}

impl Registry {
    // --- replay ------------------------------------------------------------------------

    /// Applies one record of `_schemas`, as read back (writes of this registry included).
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Schema(subject, version, value) => {
                if let Some(old) = self
                    .subjects
                    .get_mut(&subject)
                    .and_then(|versions| versions.remove(&version))
                {
                    self.unlink_id(&old);
                }
                match value {
                    Some(value) => {
                        let context = context_of(&subject).to_owned();
                        let max = self.max_ids.entry(context.clone()).or_insert(0);
                        *max = (*max).max(value.id);
                        self.ids
                            .entry((context, value.id))
                            .or_default()
                            .insert((subject.clone(), version));
                        self.subjects
                            .entry(subject)
                            .or_default()
                            .insert(version, value);
                    }
                    None => {
                        if self.subjects.get(&subject).is_some_and(BTreeMap::is_empty) {
                            self.subjects.remove(&subject);
                        }
                    }
                }
            }
            Record::Config(subject, value) => {
                let key = subject.unwrap_or_default();
                match value {
                    Some(value) => {
                        self.configs.insert(key, value);
                    }
                    None => {
                        self.configs.remove(&key);
                    }
                }
            }
            Record::Mode(subject, value) => {
                let key = subject.unwrap_or_default();
                match value.and_then(|v| Mode::from_name(&v.mode).ok()) {
                    Some(mode) => {
                        self.modes.insert(key, mode);
                    }
                    None => {
                        self.modes.remove(&key);
                    }
                }
            }
            Record::DeleteSubject(Some(DeleteSubjectValue { subject, version })) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    for (_, value) in versions.range_mut(..=version) {
                        value.deleted = true;
                    }
                }
            }
            Record::ClearSubject(Some(clear)) => {
                let in_scope = |subject: &str| match clear.subject.as_deref() {
                    None => true,
                    Some(scope) if scope.starts_with(':') && scope.ends_with(':') => {
                        context_of(subject) == context_of(scope)
                    }
                    Some(scope) => subject == scope,
                };
                let deleted: Vec<(String, i32)> = self
                    .subjects
                    .iter()
                    .filter(|(subject, _)| in_scope(subject))
                    .flat_map(|(_, vs)| vs.values().filter(|v| v.deleted))
                    .map(|v| (v.subject.clone(), v.version))
                    .collect();
                for (subject, version) in deleted {
                    self.apply(Record::Schema(subject, version, None));
                }
            }
            Record::Context(context, present) => {
                if present {
                    self.contexts.insert(context);
                } else {
                    self.contexts.remove(&context);
                }
            }
            Record::DeleteSubject(None) | Record::ClearSubject(None) | Record::Noop => {}
        }
    }

    fn unlink_id(&mut self, old: &SchemaValue) {
        let key = (context_of(&old.subject).to_owned(), old.id);
        if let Some(users) = self.ids.get_mut(&key) {
            users.remove(&(old.subject.clone(), old.version));
            if users.is_empty() {
                self.ids.remove(&key);
            }
        }
    }

    // --- reads -------------------------------------------------------------------------

    /// Subjects with a live version (`deleted`: or only soft-deleted ones; `deleted_only`:
    /// only those). `prefix: None` lists every context; a prefix without a context names
    /// subjects of the default context.
    pub fn subjects(&self, prefix: Option<&str>, deleted: bool, deleted_only: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(name, _)| match prefix {
                None => true,
                Some("") => context_of(name) == DEFAULT_CONTEXT,
                Some(prefix) => name.starts_with(prefix),
            })
            .filter(|(_, versions)| {
                let live = versions.values().any(|v| !v.deleted);
                if deleted_only {
                    !live && !versions.is_empty()
                } else {
                    live || (deleted && !versions.is_empty())
                }
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn versions_of(&self, subject: &str) -> Result<&BTreeMap<i32, SchemaValue>, RegistryError> {
        self.subjects
            .get(subject)
            .filter(|vs| !vs.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))
    }

    /// The subject's version numbers; 40401 when none matches.
    pub fn versions(
        &self,
        subject: &str,
        deleted: bool,
        deleted_only: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        let versions: Vec<i32> = self
            .versions_of(subject)?
            .values()
            .filter(|v| {
                if deleted_only {
                    v.deleted
                } else {
                    deleted || !v.deleted
                }
            })
            .map(|v| v.version)
            .collect();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Ok(versions)
    }

    /// One version; `latest` is the newest live one whatever `deleted` says.
    pub fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        deleted: bool,
    ) -> Result<&SchemaValue, RegistryError> {
        let versions = self.versions_of(subject)?;
        let found = match selector {
            VersionSelector::Latest => versions.values().rev().find(|v| !v.deleted),
            VersionSelector::Number(n) => versions.get(&n).filter(|v| deleted || !v.deleted),
        };
        if let Some(value) = found {
            return Ok(value);
        }
        if !versions.values().any(|v| deleted || !v.deleted) {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Err(RegistryError::VersionNotFound(match selector {
            VersionSelector::Latest => "-1".to_owned(),
            VersionSelector::Number(n) => n.to_string(),
        }))
    }

    /// Whether a live version of `subject` has this id (broker-side schema validation).
    pub fn subject_has_id(&self, subject: &str, id: i32) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|vs| vs.values().any(|v| v.id == id && !v.deleted))
    }

    /// The schema behind an id in a context.
    pub fn schema_by_id(&self, context: &str, id: i32) -> Option<IdEntry> {
        let (subject, version) = self.ids.get(&(context.to_owned(), id))?.iter().next()?;
        let value = self.subjects.get(subject)?.get(version)?;
        Some(IdEntry {
            schema_type: SchemaType::from_name(value.schema_type.as_deref()).ok()?,
            schema: value.schema.clone(),
            references: value.references.clone(),
        })
    }

    /// The (subject, version) pairs that carry an id, sorted.
    pub fn id_users(&self, context: &str, id: i32, deleted: bool) -> Option<Vec<(String, i32)>> {
        let users = self.ids.get(&(context.to_owned(), id))?;
        Some(
            users
                .iter()
                .filter(|(s, v)| {
                    deleted
                        || self
                            .subjects
                            .get(s)
                            .and_then(|vs| vs.get(v))
                            .is_some_and(|value| !value.deleted)
                })
                .cloned()
                .collect(),
        )
    }

    /// The largest id ever handed out in a context (at least 1, as Confluent reports it).
    pub fn max_id(&self, context: &str) -> i32 {
        self.max_ids.get(context).copied().unwrap_or(0).max(1)
    }

    fn all_versions(&self) -> impl Iterator<Item = &SchemaValue> {
        self.subjects.values().flat_map(|vs| vs.values())
    }

    /// Every version of the listed subjects, in subject then version order.
    pub fn schemas(
        &self,
        prefix: Option<&str>,
        deleted: bool,
        latest_only: bool,
    ) -> Vec<&SchemaValue> {
        let mut out = Vec::new();
        for subject in self.subjects(prefix, deleted, false) {
            let mut live = self.subjects[&subject]
                .values()
                .filter(|v| deleted || !v.deleted);
            if latest_only {
                out.extend(live.next_back());
            } else {
                out.extend(live);
            }
        }
        out
    }

    /// The versions that reference `subject`'s `version` (`deleted`: soft-deleted ones too).
    fn referrers(&self, subject: &str, version: i32, deleted: bool) -> Vec<&SchemaValue> {
        self.all_versions()
            .filter(|v| deleted || !v.deleted)
            .filter(|v| {
                v.references.iter().any(|r| {
                    r.version == version && qualify_reference(&v.subject, &r.subject) == subject
                })
            })
            .collect()
    }

    /// The ids of the schemas that reference a version, sorted.
    pub fn referenced_by(&self, subject: &str, version: i32, deleted: bool) -> Vec<i32> {
        let ids: BTreeSet<i32> = self
            .referrers(subject, version, deleted)
            .into_iter()
            .map(|v| v.id)
            .collect();
        ids.into_iter().collect()
    }

    /// 42206 when another subject's schema references this version.
    fn check_not_referenced(
        &self,
        subject: &str,
        version: i32,
        permanent: bool,
    ) -> Result<(), RegistryError> {
        if self
            .referrers(subject, version, permanent)
            .iter()
            .any(|v| v.subject != subject)
        {
            return Err(RegistryError::ReferenceExists(format!(
                "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}."
            )));
        }
        Ok(())
    }

    /// `.` first, then every context a CONTEXT record created.
    pub fn contexts(&self) -> Vec<String> {
        std::iter::once(DEFAULT_CONTEXT.to_owned())
            .chain(
                self.contexts
                    .iter()
                    .filter(|c| *c != DEFAULT_CONTEXT)
                    .cloned(),
            )
            .collect()
    }

    // --- config and mode ---------------------------------------------------------------

    /// The key of a subject's context default: `:.ctx:`, or "" (global) for the default context.
    fn context_default_key(subject: &str) -> String {
        match context_of(subject) {
            DEFAULT_CONTEXT => String::new(),
            context => format!(":{context}:"),
        }
    }

    /// The keys a subject's settings fall back through: its own, its context's, the global.
    fn fallback_keys(subject: &str) -> [String; 3] {
        [
            subject.to_owned(),
            Self::context_default_key(subject),
            String::new(),
        ]
    }

    pub fn stored_config(&self, key: Option<&str>) -> Option<&ConfigValue> {
        self.configs.get(key.unwrap_or(""))
    }

    /// The config that applies to a subject: each field from the first level that sets it.
    pub fn effective_config(&self, subject: &str) -> ConfigValue {
        let mut merged = ConfigValue::default();
        for key in Self::fallback_keys(subject).iter().rev() {
            if let Some(c) = self.configs.get(key) {
                merged.compatibility_level =
                    c.compatibility_level.clone().or(merged.compatibility_level);
                merged.normalize = c.normalize.or(merged.normalize);
                merged.alias = c.alias.clone().or(merged.alias);
            }
        }
        merged
    }

    pub fn compatibility(&self, subject: &str) -> CompatibilityLevel {
        self.effective_config(subject)
            .compatibility_level
            .and_then(|l| CompatibilityLevel::from_name(&l).ok())
            .unwrap_or(CompatibilityLevel::DEFAULT)
    }

    pub fn normalize(&self, subject: &str) -> bool {
        self.effective_config(subject).normalize.unwrap_or(false)
    }

    fn check_writable(&self, subject: &str) -> Result<(), RegistryError> {
        match self.effective_mode(subject) {
            Mode::ReadOnly | Mode::ReadOnlyOverride => {
                Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} in context {} is in read-only mode",
                    context_label(subject)
                )))
            }
            _ => Ok(()),
        }
    }

    /// Sets the compatibility level and `normalize` of a subject (or the global default),
    /// keeping what the request leaves out; answers the stored config.
    pub fn set_config(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
        normalize: Option<bool>,
    ) -> Result<Outcome<ConfigValue>, RegistryError> {
        if let Some(subject) = subject {
            self.check_writable(subject)?;
        }
        let mut value = self.stored_config(subject).cloned().unwrap_or_default();
        if let Some(level) = level {
            value.compatibility_level = Some(level.name().to_owned());
        }
        if normalize.is_some() {
            value.normalize = normalize;
        }
        value.subject = subject.map(str::to_owned);
        Ok(Outcome {
            writes: vec![Write::new(
                RecordKey::Config {
                    subject: subject.map(str::to_owned),
                },
                Some(&value),
            )],
            answer: value,
        })
    }

    /// Removes a subject's (or the global) config; answers the one that applied before.
    pub fn delete_config(
        &self,
        subject: Option<&str>,
    ) -> Result<Outcome<ConfigValue>, RegistryError> {
        if let Some(subject) = subject {
            self.check_writable(subject)?;
        }
        let before = match subject {
            Some(s) => self.effective_config(s),
            None => self.stored_config(None).cloned().unwrap_or_default(),
        };
        if subject.is_some() && self.stored_config(subject).is_none() {
            return Err(RegistryError::SubjectNotFound(
                subject.unwrap_or_default().to_owned(),
            ));
        }
        Ok(Outcome {
            writes: vec![Write::new::<ConfigValue>(
                RecordKey::Config {
                    subject: subject.map(str::to_owned),
                },
                None,
            )],
            answer: before,
        })
    }

    pub fn stored_mode(&self, key: Option<&str>) -> Option<Mode> {
        self.modes.get(key.unwrap_or("")).copied()
    }

    pub fn effective_mode(&self, subject: &str) -> Mode {
        Self::fallback_keys(subject)
            .iter()
            .find_map(|key| self.modes.get(key))
            .copied()
            .unwrap_or(Mode::ReadWrite)
    }

    /// Sets a subject's (a context's `:.ctx:`, or the global) mode. Entering IMPORT needs
    /// a scope without live subjects (unless `force`), and drops its soft-deleted versions.
    pub fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Mode,
        force: bool,
    ) -> Result<Outcome<Mode>, RegistryError> {
        let mut writes = Vec::new();
        let entering_import = mode == Mode::Import
            && subject.map_or(self.stored_mode(None), |s| Some(self.effective_mode(s)))
                != Some(Mode::Import);
        if entering_import && !force {
            let in_scope = |name: &str| match subject {
                None => true,
                Some(scope) if scope.starts_with(':') && scope.ends_with(':') => {
                    context_of(name) == context_of(scope)
                }
                Some(scope) => name == scope,
            };
            let scoped: Vec<&BTreeMap<i32, SchemaValue>> = self
                .subjects
                .iter()
                .filter(|(name, _)| in_scope(name))
                .map(|(_, vs)| vs)
                .collect();
            if scoped.iter().any(|vs| vs.values().any(|v| !v.deleted)) {
                return Err(RegistryError::OperationNotPermitted(
                    "Cannot import since found existing subjects".to_owned(),
                ));
            }
            let soft_deleted: Vec<&SchemaValue> =
                scoped.iter().flat_map(|vs| vs.values()).collect();
            if !soft_deleted.is_empty() {
                for value in &soft_deleted {
                    self.check_not_referenced(&value.subject, value.version, true)?;
                    writes.push(Write::new::<SchemaValue>(
                        RecordKey::Schema {
                            subject: value.subject.clone(),
                            version: value.version,
                        },
                        None,
                    ));
                }
                let scope = subject.map(str::to_owned);
                writes.push(Write::new(
                    RecordKey::ClearSubject {
                        subject: scope.clone(),
                    },
                    Some(&ClearSubjectValue { subject: scope }),
                ));
            }
        }
        writes.push(Write::new(
            RecordKey::Mode {
                subject: subject.map(str::to_owned),
            },
            Some(&ModeValue {
                subject: subject.map(str::to_owned),
                mode: mode.name().to_owned(),
            }),
        ));
        Ok(Outcome {
            writes,
            answer: mode,
        })
    }

    /// Removes a subject's mode; answers the one it had.
    /// Forgets a context (`:.ctx:`) that holds no subject, soft-deleted ones included.
    pub fn delete_context(&self, delimited: &str) -> Result<Outcome<()>, RegistryError> {
        let context = delimited.trim_matches(':');
        let context = if context.is_empty() {
            DEFAULT_CONTEXT
        } else {
            context
        };
        if self
            .subjects
            .iter()
            .any(|(subject, versions)| context_of(subject) == context && !versions.is_empty())
        {
            return Err(RegistryError::ContextNotEmpty(delimited.to_owned()));
        }
        if !self.contexts.contains(context) {
            return Ok(Outcome::nothing(()));
        }
        Ok(Outcome {
            writes: vec![Write::new::<ContextValue>(
                RecordKey::Context {
                    tenant: DEFAULT_TENANT.to_owned(),
                    context: context.to_owned(),
                },
                None,
            )],
            answer: (),
        })
    }

    pub fn delete_mode(&self, subject: &str) -> Result<Outcome<Mode>, RegistryError> {
        let Some(old) = self.modes.get(subject) else {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        };
        Ok(Outcome {
            writes: vec![Write::new::<ModeValue>(
                RecordKey::Mode {
                    subject: Some(subject.to_owned()),
                },
                None,
            )],
            answer: *old,
        })
    }

    // --- schemas -----------------------------------------------------------------------

    /// The schemas `references` name (a referrer's context applies to unqualified
    /// subjects), dependencies first, each with the name its referrer gives it (a schema
    /// referenced under two names is listed under each, its references once).
    fn resolve_references<'a>(
        &'a self,
        referrer: &str,
        references: &'a [SchemaReference],
    ) -> Result<Vec<(&'a str, &'a SchemaValue)>, RegistryError> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        self.collect_references(referrer, references, &mut out, &mut seen, 0)?;
        Ok(out)
    }

    fn collect_references<'a>(
        &'a self,
        referrer: &str,
        references: &'a [SchemaReference],
        out: &mut Vec<(&'a str, &'a SchemaValue)>,
        seen: &mut BTreeSet<(String, i32)>,
        depth: usize,
    ) -> Result<(), RegistryError> {
        // References form a DAG by construction; the bound stops a crafted cycle.
        if depth > 64 {
            return Err(RegistryError::InvalidSchema(
                "references are nested too deeply".to_owned(),
            ));
        }
        for reference in references {
            let subject = qualify_reference(referrer, &reference.subject);
            let selector = if reference.version == -1 {
                VersionSelector::Latest
            } else {
                VersionSelector::Number(reference.version)
            };
            let value = self.version(&subject, selector, false).map_err(|_| {
                RegistryError::InvalidSchema(format!(
                    "Invalid schema, details: No schema reference found for subject \"{}\" and version {}",
                    reference.subject, reference.version
                ))
            })?;
            if seen.insert((value.subject.clone(), value.version)) {
                self.collect_references(&value.subject, &value.references, out, seen, depth + 1)?;
            }
            let named = (reference.name.as_str(), value);
            if !out
                .iter()
                .any(|(n, v)| *n == named.0 && std::ptr::eq(*v, value))
            {
                out.push(named);
            }
        }
        Ok(())
    }

    /// Parses a schema with its references resolved from this registry.
    pub fn parse(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        references: &[SchemaReference],
    ) -> Result<ParsedSchema, RegistryError> {
        for r in references {
            if r.name.is_empty() || r.subject.is_empty() {
                return Err(RegistryError::InvalidSchema(format!(
                    "Invalid reference: {r:?}"
                )));
            }
        }
        let resolved = self.resolve_references(subject, references)?;
        let named: Vec<(&str, &str)> = resolved
            .iter()
            .map(|(name, v)| (*name, v.schema.as_str()))
            .collect();
        ParsedSchema::parse(schema_type, schema, &named)
    }

    fn parse_stored(&self, value: &SchemaValue) -> Result<ParsedSchema, RegistryError> {
        let schema_type = SchemaType::from_name(value.schema_type.as_deref())?;
        self.parse(
            &value.subject,
            schema_type,
            &value.schema,
            &value.references,
        )
    }

    /// A request's schema parsed, and the text it is stored as.
    fn prepare(
        &self,
        subject: &str,
        request: &NewSchema,
        normalize: bool,
    ) -> Result<(SchemaType, ParsedSchema, String, Vec<SchemaReference>), RegistryError> {
        if request.schema.trim().is_empty() {
            return Err(RegistryError::InvalidSchema("Empty schema".to_owned()));
        }
        let schema_type = SchemaType::from_name(request.schema_type.as_deref())?;
        let parsed = self.parse(subject, schema_type, &request.schema, &request.references)?;
        let text = if normalize || self.normalize(subject) {
            parsed.normalized()
        } else {
            parsed.canonical()
        };
        // `version: -1` references are stored with the version they resolved to.
        let references = request
            .references
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.version == -1 {
                    let subject = qualify_reference(subject, &r.subject);
                    if let Ok(v) = self.version(&subject, VersionSelector::Latest, false) {
                        r.version = v.version;
                    }
                }
                r
            })
            .collect();
        Ok((schema_type, parsed, text, references))
    }

    /// The newest version of `subject` with the same schema (`deleted`: soft-deleted too).
    pub fn lookup(
        &self,
        subject: &str,
        request: &NewSchema,
        normalize: bool,
        deleted: bool,
    ) -> Result<&SchemaValue, RegistryError> {
        if self.versions(subject, deleted, false).is_err() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        let (_, _, text, references) = self.prepare(subject, request, normalize)?;
        self.subjects
            .get(subject)
            .into_iter()
            .flat_map(|vs| vs.values().rev())
            .filter(|v| deleted || !v.deleted)
            .find(|v| same_schema(v, &text, &references))
            .ok_or_else(|| RegistryError::SchemaNotFound(String::new()))
    }

    /// The live versions of a subject parsed, oldest first, for compatibility checks.
    fn previous_versions<'a>(
        &'a self,
        subject: &str,
        only: Option<&'a SchemaValue>,
    ) -> Result<Vec<Previous<'a>>, RegistryError> {
        let values: Vec<&SchemaValue> = match only {
            Some(value) => vec![value],
            None => self
                .subjects
                .get(subject)
                .into_iter()
                .flat_map(|vs| vs.values())
                .filter(|v| !v.deleted)
                .collect(),
        };
        values
            .into_iter()
            .map(|v| {
                Ok(Previous {
                    version: v.version,
                    text: &v.schema,
                    schema: self.parse_stored(v)?,
                })
            })
            .collect()
    }

    /// Registers a schema under a subject: the id, and the records to append (none when
    /// the subject already has this schema live).
    pub fn register(
        &self,
        subject: &str,
        request: &NewSchema,
        normalize: bool,
    ) -> Result<Outcome<i32>, RegistryError> {
        check_subject_name(subject)?;
        let mode = self.effective_mode(subject);
        let context = context_of(subject);
        let requested_id = request.id.filter(|id| *id >= 0);
        match (mode, requested_id) {
            (Mode::ReadOnly | Mode::ReadOnlyOverride, _) => self.check_writable(subject)?,
            (Mode::Import, None) => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} in context {} is not in read-write mode",
                    context_label(subject)
                )))
            }
            (Mode::ReadWrite, Some(_)) => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} in context {} is not in import mode",
                    context_label(subject)
                )))
            }
            _ => {}
        }
        let importing = mode == Mode::Import;
        let (schema_type, parsed, text, references) =
            self.prepare(subject, request, normalize && !importing)?;
        let versions = self.subjects.get(subject);
        let matching: Vec<&SchemaValue> = versions
            .into_iter()
            .flat_map(|vs| vs.values())
            .filter(|v| same_schema(v, &text, &references))
            .collect();
        if let Some(live) = matching.iter().rev().find(|v| !v.deleted) {
            if requested_id.is_none_or(|id| id == live.id) {
                return Ok(Outcome::nothing(live.id));
            }
        }
        if !importing {
            let previous = self.previous_versions(subject, None)?;
            let errors = self.compatibility(subject).check(&parsed, &previous);
            if !errors.is_empty() {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    details: errors,
                });
            }
        }
        let id = match requested_id {
            Some(id) => {
                if let Some(entry) = self.schema_by_id(context, id) {
                    if entry.schema != text || entry.references != references {
                        return Err(RegistryError::OperationNotPermitted(format!(
                            "Overwrite new schema with id {id} in context {} is not permitted.",
                            context_label(subject)
                        )));
                    }
                }
                id
            }
            None => self
                .find_id(context, &text, &references)
                .unwrap_or(self.max_ids.get(context).copied().unwrap_or(0) + 1),
        };
        let latest_version = versions
            .and_then(|vs| vs.keys().next_back().copied())
            .unwrap_or(0);
        let version = match request.version.filter(|v| *v > 0) {
            Some(v) if importing => {
                if versions.is_some_and(|vs| vs.contains_key(&v)) {
                    return Err(RegistryError::OperationNotPermitted(format!(
                        "Version {v} already exists in subject {subject}"
                    )));
                }
                v
            }
            Some(v) if v != latest_version + 1 => {
                return Err(RegistryError::InvalidSchema(
                    "Version is not one more than previous version".to_owned(),
                ))
            }
            _ => latest_version + 1,
        };
        let mut writes = Vec::new();
        if context != DEFAULT_CONTEXT && !self.contexts.contains(context) {
            writes.push(Write::new(
                RecordKey::Context {
                    tenant: DEFAULT_TENANT.to_owned(),
                    context: context.to_owned(),
                },
                Some(&ContextValue {
                    tenant: DEFAULT_TENANT.to_owned(),
                    context: context.to_owned(),
                }),
            ));
        }
        // The same schema soft-deleted earlier in this subject: the new version replaces it.
        for old in matching.iter().filter(|v| v.deleted && v.id == id) {
            if self
                .check_not_referenced(subject, old.version, true)
                .is_ok()
            {
                writes.push(Write::new::<SchemaValue>(
                    RecordKey::Schema {
                        subject: subject.to_owned(),
                        version: old.version,
                    },
                    None,
                ));
            }
        }
        let value = SchemaValue {
            subject: subject.to_owned(),
            version,
            id,
            schema_type: schema_type.field(),
            references,
            metadata: request.metadata.clone(),
            rule_set: request.rule_set.clone(),
            schema: text,
            deleted: false,
        };
        writes.push(Write::new(
            RecordKey::Schema {
                subject: subject.to_owned(),
                version,
            },
            Some(&value),
        ));
        Ok(Outcome { writes, answer: id })
    }

    /// The id the same schema already has in a context (soft-deleted versions keep theirs).
    fn find_id(&self, context: &str, text: &str, references: &[SchemaReference]) -> Option<i32> {
        self.all_versions()
            .filter(|v| context_of(&v.subject) == context)
            .find(|v| same_schema(v, text, references))
            .map(|v| v.id)
    }

    /// Why `request` may not follow one version (`against`) or the versions the subject's
    /// level compares with; empty when it may.
    pub fn test_compatibility(
        &self,
        subject: &str,
        request: &NewSchema,
        against: Option<VersionSelector>,
        normalize: bool,
    ) -> Result<Vec<String>, RegistryError> {
        let only = match against {
            Some(VersionSelector::Latest) => {
                match self.version(subject, VersionSelector::Latest, false) {
                    Ok(value) => Some(value),
                    Err(_) => return Ok(Vec::new()),
                }
            }
            Some(selector @ VersionSelector::Number(n)) => Some(
                self.version(subject, selector, false)
                    .map_err(|_| RegistryError::VersionNotFound(n.to_string()))?,
            ),
            None => None,
        };
        let (_, parsed, _, _) = self.prepare(subject, request, normalize)?;
        let previous = self.previous_versions(subject, only)?;
        let level = self.compatibility(subject);
        Ok(level.check(&parsed, &previous))
    }

    /// Deletes one version: soft first, then `permanent`.
    pub fn delete_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<Outcome<i32>, RegistryError> {
        let value = self.version(subject, selector, true)?;
        let version = value.version;
        if !permanent && value.deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version,
            });
        }
        self.check_writable(subject)?;
        self.check_not_referenced(subject, version, permanent)?;
        if permanent && !value.deleted {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_owned(),
                version,
            });
        }
        let key = RecordKey::Schema {
            subject: subject.to_owned(),
            version,
        };
        let mut writes = Vec::new();
        if permanent {
            writes.push(Write::new::<SchemaValue>(key, None));
            let last = self.subjects.get(subject).is_some_and(|vs| vs.len() == 1);
            if last {
                writes.extend(self.subject_settings_tombstones(subject));
            }
        } else {
            let mut deleted = value.clone();
            deleted.deleted = true;
            writes.push(Write::new(key, Some(&deleted)));
        }
        Ok(Outcome {
            writes,
            answer: version,
        })
    }

    /// Tombstones for a subject's own mode and config, when it has them.
    fn subject_settings_tombstones(&self, subject: &str) -> Vec<Write> {
        let mut writes = Vec::new();
        if self.modes.contains_key(subject) {
            writes.push(Write::new::<ModeValue>(
                RecordKey::Mode {
                    subject: Some(subject.to_owned()),
                },
                None,
            ));
        }
        if self.configs.contains_key(subject) {
            writes.push(Write::new::<ConfigValue>(
                RecordKey::Config {
                    subject: Some(subject.to_owned()),
                },
                None,
            ));
        }
        writes
    }

    /// Deletes a subject: soft (every live version) first, then `permanent` (every version).
    pub fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Outcome<Vec<i32>>, RegistryError> {
        let versions = self.versions_of(subject)?;
        let live: Vec<&SchemaValue> = versions.values().filter(|v| !v.deleted).collect();
        if !permanent && live.is_empty() {
            return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
        }
        self.check_writable(subject)?;
        let doomed: Vec<&SchemaValue> = if permanent {
            versions.values().collect()
        } else {
            live.clone()
        };
        for value in &doomed {
            self.check_not_referenced(subject, value.version, permanent)?;
        }
        if permanent && !live.is_empty() {
            return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
        }
        let mut writes = Vec::new();
        if permanent {
            for value in doomed.iter().rev() {
                writes.push(Write::new::<SchemaValue>(
                    RecordKey::Schema {
                        subject: subject.to_owned(),
                        version: value.version,
                    },
                    None,
                ));
            }
            writes.extend(self.subject_settings_tombstones(subject));
        } else {
            let latest = live.last().map(|v| v.version).unwrap_or_default();
            writes.push(Write::new(
                RecordKey::DeleteSubject {
                    subject: subject.to_owned(),
                },
                Some(&DeleteSubjectValue {
                    subject: subject.to_owned(),
                    version: latest,
                }),
            ));
        }
        Ok(Outcome {
            writes,
            answer: doomed.iter().map(|v| v.version).collect(),
        })
    }
}

/// A reference's subject, in its referrer's context when it names none.
fn qualify_reference(referrer: &str, subject: &str) -> String {
    if subject.starts_with(':') {
        subject.to_owned()
    } else {
        qualify(context_of(referrer), subject)
    }
}

/// A subject's context as Confluent's messages print it: empty for the default context.
fn context_label(subject: &str) -> String {
    match context_of(subject) {
        DEFAULT_CONTEXT => String::new(),
        context => format!(":{context}:"),
    }
}

/// 42208 for names Confluent refuses: control characters, reserved names, no name.
fn check_subject_name(subject: &str) -> Result<(), RegistryError> {
    let name = match subject.strip_prefix(':').and_then(|r| r.split_once(':')) {
        Some((_, name)) => name,
        None => subject,
    };
    let invalid = name.is_empty()
        || name == "*"
        || name == "__GLOBAL"
        || name == "__EMPTY"
        || context_of(subject) == ".__GLOBAL"
        || subject.chars().any(char::is_control);
    if invalid {
        return Err(RegistryError::InvalidSubject(subject.to_owned()));
    }
    Ok(())
}

/// Whether a stored version holds this schema: the same stored text and references
/// (Confluent's identity hash covers these, not the type).
fn same_schema(value: &SchemaValue, text: &str, references: &[SchemaReference]) -> bool {
    value.schema == text && value.references == references
}
