//! Safe extraction of a `DirectoryUpload` tar stream into its `masterdest`.
//!
//! The archive comes from a worker, so it is hostile until checked. Like Python's tarfile
//! `data` filter (what the stock master uses), we refuse absolute names, `..`, links whose
//! target leaves the destination, device files and fifos; on top of it we cap the total size
//! and the number of entries. The archive is read twice: a first pass checks every header
//! without touching the disk, so a bad archive writes nothing at all; the second pass
//! extracts, checking each path again against the files as they now are (a symlink made by an
//! earlier entry is followed physically, as the kernel would).

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// How the tar stream is compressed (`compress=None|'gz'|'bz2'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
}

/// Caps on what one archive may create.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sum of the sizes of the regular files.
    pub max_total_bytes: u64,
    /// Number of entries of any kind.
    pub max_entries: u64,
}

/// What an extraction created.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Regular files written.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}

/// Extracts `archive` into `dest` (created if missing). Any refused entry refuses the whole
/// archive with a message naming it; nothing is written outside `dest` in any case.
pub fn extract(
    archive: &Path,
    compression: Compression,
    dest: &Path,
    limits: Limits,
) -> Result<Extracted, String> {
    check_all(archive, compression, limits)?;
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let root = dest
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dest.display()))?;
    let mut tar = open(archive, compression)?;
    let entries = tar
        .entries()
        .map_err(|e| format!("unreadable archive: {e}"))?;
    let mut done = Extracted::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("unreadable archive: {e}"))?;
        let header = EntryHeader::read(&entry)?;
        let Some(rel) = header.rel else { continue };
        let path = root.join(&rel);
        let parent = path.parent().unwrap_or(&root);
        inside(&root, &resolve(&root, parent)?, &rel)?;
        replace_link(&path)?;
        match &header.kind {
            Kind::Directory => std::fs::create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            Kind::File => {
                create_parent(&path)?;
                let mut out = File::create(&path)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                let copied = std::io::copy(&mut (&mut entry).take(header.size), &mut out)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                done.files += 1;
                done.bytes += copied;
            }
            Kind::Symlink(target) => {
                let resolved = resolve(&root, &parent.join(target))?;
                inside(&root, &resolved, &rel)?;
                create_parent(&path)?;
                std::os::unix::fs::symlink(target, &path)
                    .map_err(|e| format!("cannot create link {}: {e}", path.display()))?;
            }
            Kind::Hardlink(target) => {
                let source = resolve(&root, &root.join(target))?;
                inside(&root, &source, &rel)?;
                create_parent(&path)?;
                std::fs::hard_link(&source, &path)
                    .map_err(|e| format!("cannot create link {}: {e}", path.display()))?;
            }
        }
        if let (Some(mode), Kind::File | Kind::Directory) = (header.mode, &header.kind) {
            set_mode(&path, mode);
        }
    }
    Ok(done)
}

/// The kinds of entry we create.
enum Kind {
    Directory,
    File,
    /// Target as written in the archive (relative to the link's directory).
    Symlink(PathBuf),
    /// Target relative to the archive root.
    Hardlink(PathBuf),
}

/// One header, checked: `rel` is `None` for the archive's root entry (`""` or `.`).
struct EntryHeader {
    rel: Option<PathBuf>,
    kind: Kind,
    size: u64,
    mode: Option<u32>,
}

impl EntryHeader {
    fn read<R: Read>(entry: &tar::Entry<'_, R>) -> Result<EntryHeader, String> {
        let raw = entry
            .path()
            .map_err(|e| format!("an entry has an unreadable name: {e}"))?;
        let name = raw.display().to_string();
        let header = entry.header();
        // The stock worker's tarfile names the root directory "/" (its arcname is "", plus the
        // slash tarfile gives directories); that one absolute name is the destination itself.
        let root_dir = name == "/" && header.entry_type() == tar::EntryType::Directory;
        let rel = match root_dir {
            true => None,
            false => relative(&raw).map_err(|why| format!("refused entry '{name}': {why}"))?,
        };
        let link = || -> Result<PathBuf, String> {
            let target = entry
                .link_name()
                .map_err(|e| format!("refused entry '{name}': unreadable link target: {e}"))?
                .ok_or_else(|| format!("refused entry '{name}': a link without a target"))?;
            Ok(target.into_owned())
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Directory,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Symlink => {
                let target = link()?;
                if target.is_absolute() {
                    return Err(format!(
                        "refused entry '{name}': a symlink to the absolute path {}",
                        target.display()
                    ));
                }
                Kind::Symlink(target)
            }
            tar::EntryType::Link => {
                let target = link()?;
                let target = relative(&target)
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        format!(
                            "refused entry '{name}': a hard link to {} outside the directory",
                            target.display()
                        )
                    })?;
                Kind::Hardlink(target)
            }
            other => {
                return Err(format!(
                    "refused entry '{name}': {} entries are not allowed (only files, directories and links)",
                    kind_name(other)
                ))
            }
        };
        if rel.is_none() && !matches!(kind, Kind::Directory) {
            return Err(format!(
                "refused entry '{name}': the root must be a directory"
            ));
        }
        let size = match kind {
            Kind::File => header
                .size()
                .map_err(|e| format!("refused entry '{name}': bad size: {e}"))?,
            _ => 0,
        };
        // Never setuid, setgid or sticky, never writable by others (as tarfile's data filter).
        let mode = header.mode().ok().map(|m| m & 0o775);
        Ok(EntryHeader {
            rel,
            kind,
            size,
            mode,
        })
    }
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special",
    }
}

/// The first pass: every header checked, sizes and entries counted, nothing written.
fn check_all(
    archive: &Path,
    compression: Compression,
    limits: Limits,
) -> Result<Extracted, String> {
    let mut tar = open(archive, compression)?;
    let entries = tar
        .entries()
        .map_err(|e| format!("unreadable archive: {e}"))?;
    let mut total = Extracted::default();
    let mut count = 0u64;
    for entry in entries {
        let entry = entry.map_err(|e| format!("unreadable archive: {e}"))?;
        let header = EntryHeader::read(&entry)?;
        count += 1;
        if count > limits.max_entries {
            return Err(format!(
                "the archive has more than {} entries",
                limits.max_entries
            ));
        }
        if let Kind::Symlink(target) = &header.kind {
            // Lexical check here; the physical one happens while extracting.
            let rel = header.rel.clone().unwrap_or_default();
            let joined = rel.parent().unwrap_or(Path::new("")).join(target);
            if lexical(&joined).is_none() {
                return Err(format!(
                    "refused entry '{}': a symlink to {} outside the directory",
                    rel.display(),
                    target.display()
                ));
            }
        }
        if let Kind::File = header.kind {
            total.files += 1;
            total.bytes = total.bytes.saturating_add(header.size);
            if total.bytes > limits.max_total_bytes {
                return Err(format!(
                    "the archive holds more than {} bytes (raise maxsize to allow more)",
                    limits.max_total_bytes
                ));
            }
        }
    }
    Ok(total)
}

fn open(archive: &Path, compression: Compression) -> Result<tar::Archive<Box<dyn Read>>, String> {
    let file = File::open(archive).map_err(|e| format!("cannot read the archive: {e}"))?;
    let file = std::io::BufReader::new(file);
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::read::BzDecoder::new(file)),
    };
    Ok(tar::Archive::new(reader))
}

/// An entry name as a clean relative path; `None` for the root entry itself.
fn relative(raw: &Path) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("'..' is not allowed in names"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute names are not allowed")
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// `path` with `.` and `..` applied lexically; `None` when it climbs above its start.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Resolves `path` (under `root`) the way the kernel would: existing symlinks are followed,
/// `..` applies to what a component really is, missing parts are taken as written.
fn resolve(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut current = root.to_path_buf();
    for component in rel.components() {
        match component {
            Component::Normal(part) => {
                current.push(part);
                let is_link = std::fs::symlink_metadata(&current)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    current = current.canonicalize().map_err(|_| {
                        format!(
                            "refused: {} is a link that leads nowhere",
                            current.display()
                        )
                    })?;
                }
            }
            Component::ParentDir => {
                current.pop();
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => current = PathBuf::from("/"),
        }
    }
    Ok(current)
}

fn inside(root: &Path, resolved: &Path, rel: &Path) -> Result<(), String> {
    if resolved.starts_with(root) {
        return Ok(());
    }
    Err(format!(
        "refused entry '{}': it leads outside the directory (to {})",
        rel.display(),
        resolved.display()
    ))
}

/// A link left by an earlier entry is replaced, never written through.
fn replace_link(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() || meta.is_file() => std::fs::remove_file(path)
            .map_err(|e| format!("cannot replace {}: {e}", path.display())),
        _ => Ok(()),
    }
}

fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display())),
        None => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort, as for FileUpload's mode: the content is what matters.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of a test archive.
    enum Item<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Fifo(&'a str),
        CharDevice(&'a str),
    }

    /// Writes the items as a tar, with names set raw (the tar crate's `append_data` would
    /// refuse `..` and absolute names, which is the point of these tests).
    fn archive(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            let (name, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match item {
                Item::Dir(n) => (n, tar::EntryType::Directory, b"", None),
                Item::File(n, d) => (n, tar::EntryType::Regular, d, None),
                Item::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", Some(t)),
                Item::Hardlink(n, t) => (n, tar::EntryType::Link, b"", Some(t)),
                Item::Fifo(n) => (n, tar::EntryType::Fifo, b"", None),
                Item::CharDevice(n) => (n, tar::EntryType::Char, b"", None),
            };
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if let Some(link) = link {
                let bytes = link.as_bytes();
                header.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
            }
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o4755);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// The one caller of `extract`: the result, and every path that exists afterwards in the
    /// sandbox (destination and its surroundings).
    fn check(items: &[Item<'_>], max_total_bytes: u64) -> (Result<Extracted, String>, Vec<String>) {
        let sandbox = tempfile::tempdir().unwrap();
        let tar_path = sandbox.path().join("upload.tar");
        std::fs::write(&tar_path, archive(items)).unwrap();
        let dest = sandbox.path().join("out/dest");
        let limits = Limits {
            max_total_bytes,
            max_entries: 100,
        };
        let result = extract(&tar_path, Compression::None, &dest, limits);
        let mut paths = Vec::new();
        let mut stack = vec![sandbox.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(sandbox.path())
                    .unwrap()
                    .display()
                    .to_string();
                if rel != "upload.tar" {
                    paths.push(rel);
                }
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    stack.push(path);
                }
            }
        }
        paths.sort();
        (result, paths)
    }

    #[test]
    fn a_good_archive_is_extracted_without_special_bits() {
        let (result, paths) = check(
            &[
                Item::Dir("/"),
                Item::Dir("sub"),
                Item::File("sub/a.txt", b"hello"),
                Item::Symlink("sub/link", "a.txt"),
                Item::Hardlink("b.txt", "sub/a.txt"),
            ],
            1 << 20,
        );
        assert_eq!(result, Ok(Extracted { files: 1, bytes: 5 }));
        assert_eq!(
            paths,
            [
                "out",
                "out/dest",
                "out/dest/b.txt",
                "out/dest/sub",
                "out/dest/sub/a.txt",
                "out/dest/sub/link"
            ]
        );
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let cases: &[(&[Item<'_>], &str)] = &[
            (&[Item::File("/etc/evil", b"x")], "absolute names"),
            (&[Item::File("/", b"x")], "absolute names"),
            (&[Item::File("../evil", b"x")], "'..' is not allowed"),
            (&[Item::File("sub/../../evil", b"x")], "'..' is not allowed"),
            (&[Item::Symlink("link", "/etc/passwd")], "absolute path"),
            (&[Item::Symlink("link", "../..")], "outside the directory"),
            (
                &[Item::Hardlink("link", "../../etc/passwd")],
                "outside the directory",
            ),
            (&[Item::Fifo("pipe")], "fifo entries are not allowed"),
            (
                &[Item::CharDevice("null")],
                "character device entries are not allowed",
            ),
            (
                &[Item::File("a", &[0; 600]), Item::File("b", &[0; 600])],
                "more than 1000 bytes",
            ),
            // A link to the destination itself, then a link through it to its parent.
            (
                &[
                    Item::Symlink("self", "."),
                    Item::Dir("sub"),
                    Item::Symlink("sub/up", "../self/.."),
                ],
                "outside the directory",
            ),
            // Writing through a link made by an earlier entry.
            (
                &[
                    Item::Symlink("self", "."),
                    Item::Dir("d"),
                    Item::Symlink("d/esc", "../self/.."),
                    Item::File("d/esc/evil", b"x"),
                ],
                "outside the directory",
            ),
        ];
        for (items, expected) in cases {
            let (result, paths) = check(items, 1000);
            let err = result.expect_err(expected);
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
            assert!(
                paths.iter().all(|p| p.starts_with("out")),
                "{expected}: wrote {paths:?}"
            );
            assert!(
                !paths.iter().any(|p| p.contains("evil")),
                "{expected}: wrote {paths:?}"
            );
        }
    }
}
