//! A pseudo-terminal for `shell` with `usePTY` (spec §6.2): the child gets the slave side as
//! stdin, stdout and stderr, in a new session whose controlling terminal it is; the worker reads
//! the master side, which carries stdout and stderr merged (as with the stock worker).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, ReadBuf};

/// Both ends of a new pseudo-terminal.
pub(crate) struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    /// Opens a pseudo-terminal. Both descriptors are close-on-exec, so that no other child
    /// inherits them (a leaked slave would keep the terminal open after the command ended).
    pub(crate) fn open() -> io::Result<Pty> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        for fd in [&pair.master, &pair.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io::Error::from)?;
        }
        Ok(Pty {
            master: pair.master,
            slave: pair.slave,
        })
    }

    /// Makes `process` run on the slave side: stdio on the terminal, a new session (which also
    /// makes the child a process-group leader, so the usual group kill reaches everything it
    /// starts), and the terminal as its controlling tty so that `test -t` and job control work.
    pub(crate) fn attach(&self, process: &mut tokio::process::Command) -> io::Result<()> {
        let stdio = || self.slave.try_clone().map(Stdio::from);
        process.stdin(stdio()?).stdout(stdio()?).stderr(stdio()?);
        // SAFETY: setsid and ioctl are async-signal-safe; the closure touches no memory that
        // another thread could hold locked. Stdio is already on fd 0 when pre_exec runs.
        unsafe {
            process.pre_exec(|| {
                nix::unistd::setsid().map_err(io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Closes the worker's copy of the slave (the child keeps its own) and returns a reader of
    /// the master side. Closing it is what lets the reader see the end once the child and its
    /// descendants have closed the terminal.
    pub(crate) fn into_reader(self) -> io::Result<PtyReader> {
        drop(self.slave);
        let flags = fcntl(&self.master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&self.master, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which alone owns and closes it.
        let fd = unsafe { AsyncFd::register(self.master) }
            .map_err(|err| io::Error::other(err.to_string()))?;
        Ok(PtyReader { fd })
    }
}

/// The master side of a pseudo-terminal, read without blocking a thread.
///
/// Linux answers `EIO` once no process holds the slave open any more; callers treat any error
/// as the end of the output, like end of file on a pipe.
pub(crate) struct PtyReader {
    fd: AsyncFd<OwnedFd>,
}

impl AsyncRead for PtyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(guard) => guard?,
                Poll::Pending => return Poll::Pending,
            };
            let unfilled = buf.initialize_unfilled();
            let read = guard.try_io(|fd| {
                let raw = fd.get_ref().as_raw_fd();
                // SAFETY: `unfilled` is valid writable memory of the given length.
                let n = unsafe { libc::read(raw, unfilled.as_mut_ptr().cast(), unfilled.len()) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(n as usize)
            });
            match read {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => continue,
            }
        }
    }
}
