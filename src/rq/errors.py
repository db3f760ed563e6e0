"""rq's own exceptions. Core modules raise these; only rq.cli turns them into exit codes."""


class RqError(Exception):
    """A failure the user should see as one clear line (exit code 1)."""

    exit_code = 1


class UsageError(RqError):
    """The command was asked for something it cannot mean (exit code 2)."""

    exit_code = 2


class QueueError(RqError):
    """The queue file is missing, unreadable or not a Markdown reading queue."""

    def __init__(self, message: str, path=None, line: int | None = None):
        where = str(path) if path is not None else "queue"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class ArchiveError(RqError):
    """The index folder cannot be used (wrong queue, unreadable database...)."""


class DiskFullError(ArchiveError):
    """A write ran out of room (a full disk, a quota, a file size limit). Transactions roll back
    and files are replaced only once whole, so what was stored before is intact."""

    def __init__(self, what: str, folder, detail: str = ""):
        cause = f"the disk is full or failing ({detail})" if detail else "the disk is full"
        super().__init__(f"{cause} while writing {what} in {folder}; nothing already stored was lost: "
                         "free some space and run the command again")


class IndexMismatchError(RqError):
    """The vector index was built with other settings than the ones asked for."""


class NotFoundError(RqError):
    """An id, prefix or URL names no resource in the queue."""


class ConfigError(UsageError):
    """A setting has a value rq cannot use."""
