"""Probes that pass a tag or key allow-list: system paths and SSRF hosts spelled as labels.

Tags (``^[#@]?\\w[\\w.:/@#+-]*$``) and metadata keys may hold ``/``, ``.``, ``:`` and ``@``, so
``bin/visudo``, ``etc/passwd``, ``wp-config-php.bak``, ``127.0.0.1:6379``, ``0x7f000001`` or
``user@169.254.169.254`` fit them. An attack corpus sprays such values at every field to see
which one a server later uses as a path or a URL; we refuse them in labels, where they have no
everyday use, while ordinary hierarchical tags (``project/alpha``, ``lang/python``,
``v1.2.3``, ``10.2``) pass:

* ``system_path_probe``: the value spells a system path: a system directory followed by a
  sensitive binary or file (``bin/visudo``, ``usr/local/bin/chef``, ``etc/shadow``), a known
  system location (``proc/self/environ``, ``windows/system32``), or a bare sensitive file name
  in any of the spellings fuzzers use (``wp-config.php``, ``wp-config-php.bak``, ``.htpasswd``,
  ``id_rsa``). A directory alone is not enough: ``dev/frontend`` and ``lib/utils`` are tags.
* ``ssrf_probe``: the value names an internal host the way a URL parser would read it: an
  internal IP address in any spelling (dotted, decimal, octal, hex, short ``127.1``,
  IPv6 including IPv4-mapped), optionally with a port, user-info or path; a cloud-metadata,
  loopback or rebinding-service name; or a DNS name embedding an internal address. Short
  dotted forms count only for loopback and metadata targets (``10.2`` is a version number).
"""

from __future__ import annotations

import ipaddress
import re

from dakera_server.security.inspection.detectors import COMMAND, TRAVERSAL
from dakera_server.security.inspection.ssrf import (
    CANONICAL_IPV4,
    LOOPBACK_NAMES,
    METADATA_ADDRESSES,
    METADATA_NAMES,
    REDIRECT_SERVICES,
    address_refusal,
)

__all__ = ["ssrf_probe", "system_path_probe"]

PLAIN_LABEL = re.compile(r"[A-Za-z_ ]*")  # no digit, dot, colon, dash, slash: no host, no path

SYSTEM_DIRS = frozenset(
    {
        "bin", "sbin", "etc", "usr", "var", "proc", "sys", "dev", "boot", "root", "lib",
        "lib64", "opt", "srv", "tmp", "home", "private", "windows", "winnt", "system32",
        "inetpub", "wwwroot", "local", "run",
    }
)  # fmt: skip
# Binaries a command probe names: privilege and shell tools, interpreters, network tools,
# configuration-management agents. Lower case, compared segment by segment.
SYSTEM_BINARIES = frozenset(
    {
        "sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox", "su", "sudo",
        "visudo", "sudoedit", "doas", "passwd", "chpasswd", "useradd", "usermod", "adduser",
        "chmod", "chown", "chattr", "mount", "umount", "nc", "ncat", "netcat", "socat", "curl",
        "wget", "telnet", "ssh", "scp", "python", "python2", "python3", "perl", "ruby", "php",
        "node", "lua", "env", "id", "whoami", "uname", "cat", "ls", "rm", "dd", "crontab",
        "at", "systemctl", "service", "chef", "chef-client", "chef-solo", "puppet", "salt",
        "salt-call", "ansible", "kubectl", "docker", "nmap", "tcpdump", "iptables", "cmd.exe",
        "powershell.exe", "cmd", "powershell", "pwsh", "certutil.exe", "net.exe", "wscript.exe",
        "cscript.exe", "rundll32.exe", "regsvr32.exe", "mshta.exe",
    }
)  # fmt: skip
# Files a path probe reads, in their canonical spelling (``.``, ``-`` and ``_`` are compared
# loosely, and backup suffixes are stripped, see ``_file_stem``).
SENSITIVE_FILES = frozenset(
    {
        "passwd", "shadow", "group", "gshadow", "sudoers", "hosts", "hostname", "issue",
        "resolv.conf", "fstab", "mtab", "crontab", "motd", "environ", "cmdline", "maps",
        "authorized_keys", "known_hosts", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519",
        "bash_history", "zsh_history", "bashrc", "profile", "htaccess", "htpasswd",
        "wp-config.php", "wp-config", "web.config", "win.ini", "boot.ini", "system.ini", "sam",
        "config.php", "configuration.php", "localsettings.php", "settings.php", "database.yml",
        "credentials", "my.cnf", "php.ini", "httpd.conf", "nginx.conf", "shadow-", "passwd-",
        "global.asa", "applicationhost.config", "docker.sock", "kubeconfig",
    }
)  # fmt: skip
# Names that are also everyday tags on their own; they count only after a system directory.
EVERYDAY_FILES = frozenset(
    {
        "group", "hosts", "hostname", "issue", "profile", "credentials", "maps", "motd", "sam",
        "config.php", "settings.php", "database.yml", "php.ini", "nginx.conf", "httpd.conf",
        "my.cnf", "resolv.conf", "fstab", "crontab", "cmdline", "bashrc", "kubeconfig",
        "configuration.php", "localsettings.php", "web.config", "applicationhost.config",
        "environ", "mtab",
    }
)  # fmt: skip
SYSTEM_LOCATIONS = (
    ("usr", "bin"), ("usr", "sbin"), ("usr", "local", "bin"), ("usr", "local", "sbin"),
    ("usr", "lib"), ("usr", "libexec"), ("var", "log"), ("var", "www"), ("var", "run"),
    ("var", "lib"), ("var", "spool"), ("var", "mail"), ("proc", "self"), ("sys", "class"),
    ("sys", "kernel"), ("dev", "tcp"), ("dev", "udp"), ("dev", "shm"), ("dev", "mem"),
    ("windows", "system32"), ("winnt", "system32"), ("windows", "win.ini"), ("etc", "ssh"),
    ("etc", "ssl"), ("etc", "cron.d"), ("etc", "sudoers.d"), ("root", ".ssh"),
)  # fmt: skip
BACKUP_SUFFIX = re.compile(
    r"(?:[.\-_~](?:bak|backup|old|orig|save|saved|swp|swo|tmp|copy|\d+|txt))+$|~+$"
)
SEPARATORS = re.compile(r"[.\-_]")
PORT_SUFFIX = re.compile(r":\d{1,5}$")
# Only URL schemes: "type:fact" or "port:8080" are everyday key:value tags, not hosts.
SCHEME_PREFIX = re.compile(
    r"^(?:https?|ftps?|sftp|ssh|gopher|dict|file|ldaps?|tftp|wss?|jar|netdoc|redis|mysql"
    r"|postgres(?:ql)?|mongodb|smtp|imap|telnet|rtsp|git):/*"
)
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NUMERIC_PART = re.compile(r"^(?:0x[0-9a-f]*|\d+)$")
DOTTED = re.compile(r"(?:^|[.\-])(\d{1,3})[.\-](\d{1,3})[.\-](\d{1,3})[.\-](\d{1,3})(?:$|[.\-])")
TWO_TO_THE_24 = 1 << 24
TWO_TO_THE_32 = 1 << 32


def _file_stem(segment: str) -> str:
    """``wp-config-php.bak`` → ``wpconfigphp``: backup suffixes and separators dropped."""
    return SEPARATORS.sub("", BACKUP_SUFFIX.sub("", segment.lstrip(".")))


SENSITIVE_STEMS = frozenset(_file_stem(name) for name in SENSITIVE_FILES)
BARE_SENSITIVE_STEMS = frozenset(
    _file_stem(name) for name in SENSITIVE_FILES - EVERYDAY_FILES if len(_file_stem(name)) >= 4
)
BINARY_STEMS = frozenset(SYSTEM_BINARIES)
FLATTENED_DIRS = ("etc", "proc", "root", "windows", "winnt", "boot", "var")


def system_path_probe(value: str) -> str | None:
    """``COMMAND`` when a tag or key names a system binary by its path (``bin/visudo``),
    ``TRAVERSAL`` when it spells another system path or a sensitive file, else None."""
    if "/" not in value and not any(c in value for c in ".-_~"):
        return None
    low = value.lower().strip("/")
    segments = [s for s in low.split("/") if s]
    if not segments:
        return None
    if any(_bare_sensitive(s) for s in segments):
        return TRAVERSAL
    if len(segments) == 1:
        return None
    if any(s in BINARY_STEMS for s in segments[1:]) and _system_rooted(segments):
        return COMMAND
    for location in SYSTEM_LOCATIONS:
        if tuple(segments[: len(location)]) == location:
            return TRAVERSAL
    if not _system_rooted(segments):
        return None
    sensitive = any(_file_stem(s) in SENSITIVE_STEMS or s in SENSITIVE_FILES for s in segments[1:])
    return TRAVERSAL if sensitive else None


def _system_rooted(segments: list[str]) -> bool:
    """Whether a path starts at a system directory (``bin/…``, ``C:/windows/…``)."""
    if segments[0].rstrip(":") in ("c", "d") and len(segments) > 1:
        return segments[1] in SYSTEM_DIRS
    return segments[0] in SYSTEM_DIRS


def _bare_sensitive(segment: str) -> bool:
    """A sensitive file's name on its own (``wp-config-php.bak``), also flattened with its
    directory (``etc-passwd.bak``)."""
    if not _looks_like_file(segment):
        return False
    stem = _file_stem(segment)
    if stem in BARE_SENSITIVE_STEMS:
        return True
    return any(stem.startswith(d) and stem[len(d) :] in SENSITIVE_STEMS for d in FLATTENED_DIRS)


def _looks_like_file(segment: str) -> bool:
    """A bare name counts only in a file's spelling: an extension, a dot, a separator or a
    backup suffix (``wp-config-php.bak``, ``.htpasswd``, ``id_rsa``), never a plain word like
    ``shadow`` or ``idecdsa`` (the property test wrote ``aaa/idecdsa``, a tag, not a key file)."""
    return segment != _file_stem(segment)


def _numeric_host(host: str) -> tuple[ipaddress.IPv4Address, bool, int] | None:
    """(address, obfuscated, parts) for an all-numeric host as lenient URL parsers read it."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(NUMERIC_PART.match(p) for p in parts):
        return None
    numbers = []
    obfuscated = False
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
            obfuscated = True
        elif len(part) > 1 and part.startswith("0") and set(part) <= set("01234567"):
            numbers.append(int(part, 8))
            obfuscated = True
        else:
            numbers.append(int(part))
    if len(parts) in (2, 3) and numbers[-1] > 255 and all(n <= 255 for n in numbers[:-1]):
        obfuscated = True  # 192.168.257: the last part packs the remaining bytes
    if any(n > 255 for n in numbers[:-1]):
        if len(parts) < 4 or obfuscated:
            return None  # 2024.01.05 is a date; inet_aton refuses such a spelling too
        obfuscated = True  # 425.510.425.510: some parsers keep the low byte of each part
    value = 0
    for index, number in enumerate(numbers[:-1]):
        value |= (number & 0xFF) << (8 * (3 - index))
    value |= numbers[-1] & ((1 << (8 * (5 - len(numbers)))) - 1)
    return ipaddress.IPv4Address(value % TWO_TO_THE_32), obfuscated, len(parts)


def _host_of(value: str) -> tuple[str, bool, bool]:
    """(host, URL-shaped, has user-info or port): scheme, user-info, path and port removed."""
    low = value.lower()
    host = SCHEME_PREFIX.sub("", low)
    url_shaped = host != low
    host = host.split("/", 1)[0]
    extras = "@" in host
    host = host.rsplit("@", 1)[-1]
    if host.count(":") == 1 and PORT_SUFFIX.search(host):
        host = PORT_SUFFIX.sub("", host)
        extras = True
    return host.rstrip("."), url_shaped, extras


def _numeric_reason(host: str, url_shaped: bool, extras: bool) -> str | None:
    found = _numeric_host(host)
    if found is None:
        return None
    address, obfuscated, parts = found
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    reason = address_refusal(address)
    if reason is None:
        return None
    if obfuscated:
        return reason
    if parts == 4:
        return reason if CANONICAL_IPV4.match(host) else None
    if parts == 1:
        # A bare integer is an address only from 2**24 (below, it is 0.x.y.z, an id or a
        # year) and below 2**32; after a URL scheme ("http:0") any integer is one.
        return reason if url_shaped or TWO_TO_THE_24 <= int(host) < TWO_TO_THE_32 else None
    # 127.1, 127.0.1: short forms, as versions are ("10.2"); only loopback counts, unless the
    # label is URL-shaped or carries a port or user-info.
    return reason if address.is_loopback or url_shaped or extras else None


def _ipv6_reason(host: str) -> str | None:
    try:
        v6 = ipaddress.IPv6Address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    reason = address_refusal(v6)
    # Only internal spellings: "a::b" parses too, and is an odd tag, not an attack.
    internal = (
        v6.is_loopback or v6.is_unspecified or v6.is_link_local or v6.is_site_local
        or v6 in UNIQUE_LOCAL or v6 in METADATA_ADDRESSES or v6.ipv4_mapped is not None
        or v6.sixtofour is not None or int(v6) >> 32 == 0 or v6 in NAT64
    )  # fmt: skip
    return reason if internal else None


def ssrf_probe(value: str) -> str | None:
    """Why a tag or key names an internal host (a short reason), or None."""
    if PLAIN_LABEL.fullmatch(value):
        return None
    host, url_shaped, extras = _host_of(value)
    if not host:
        return None
    if host.count(":") >= 2:
        return _ipv6_reason(host)
    numeric = _numeric_reason(host, url_shaped, extras)
    if numeric is not None:
        return numeric
    bare = not (url_shaped or extras)
    if host in METADATA_NAMES and not (bare and host == "metadata"):
        return "a cloud metadata host"
    if host in LOOPBACK_NAMES and not (bare and host == "localhost"):
        return "a loopback host name"
    if any(host == s or host.endswith("." + s) for s in REDIRECT_SERVICES):
        return "a redirect or DNS-rebinding service"
    if host.endswith((".internal", ".localhost")):
        return "an internal host name"
    for match in DOTTED.finditer(host):
        octets = [int(g) for g in match.groups()]
        if all(o <= 255 for o in octets) and match.group(0).strip(".-") != host:
            embedded = ipaddress.IPv4Address(".".join(map(str, octets)))
            if address_refusal(embedded) is not None:
                return "a host name that embeds an internal address"
    return None
