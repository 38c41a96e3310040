"""The seven injection detectors for free text (memory content, queries, summaries, metadata).

Agents store conversations, code and shell commands, so these detectors look only for attack
*shapes* that have no everyday use — a quote that closes a string and then opens a tautology,
``$(cat /etc/passwd)``, ``<script``, ``onerror=`` inside a tag, ``%2e%2e%2f``, a NUL byte, an
encoded CRLF followed by a header, a cloud-metadata address. Ordinary text that merely
*mentions* SQL (``SELECT * FROM users WHERE id = 1``), shell (``rm -rf build/ && make``) or HTML
(``<b>bold</b>``) passes. The false-positive rate on benign text and the share of public attack
corpora caught in free-text position are measured by ``bench/validation.py``. Structured fields
(ids, names, tags, URLs) do not rely on these detectors but on allow-list patterns
(``security/inspection/fields.py``), which refuse the seven categories by construction.

Each detector is a list of ``Rule``s: a compiled pattern guarded by cheap substring triggers, so
ordinary text pays a few ``in`` tests rather than a scan per pattern. ``detect`` also looks at
the percent-decoded and HTML-entity-decoded forms when the text contains ``%`` or ``&``,
since encoding is the usual way past naive filters.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from dakera_server.security.inspection.ssrf import text_mentions_ssrf

__all__ = ["CATEGORIES", "DETECTORS", "Detector", "detect", "detect_raw"]

SQL = "sql injection"
NOSQL = "nosql injection"
COMMAND = "command injection"
TRAVERSAL = "path traversal"
XSS = "xss"
SSRF = "ssrf"
CRLF = "header injection"
CATEGORIES = (SQL, NOSQL, COMMAND, TRAVERSAL, XSS, SSRF, CRLF)

Detector = Callable[[str, str], bool]
FLAGS = re.DOTALL  # rules search the lower-cased text: no IGNORECASE, which is slower


@dataclass(frozen=True)
class Rule:
    """A pattern searched in the lower-cased text when it holds one of ``any_of`` (and ``also``)."""

    any_of: tuple[str, ...]
    pattern: re.Pattern[str]
    also: str = ""

    def search(self, text: str, low: str) -> bool:
        """True when the triggers are present and the pattern matches."""
        return (
            self.also in low
            and any(t in low for t in self.any_of)
            and self.pattern.search(low) is not None
        )


def rule(any_of: tuple[str, ...] | str, *patterns: str, flags: int = FLAGS, also: str = "") -> Rule:
    """One ``Rule``; several patterns are joined into one alternation."""
    triggers = (any_of,) if isinstance(any_of, str) else any_of
    return Rule(triggers, re.compile("|".join(patterns), flags), also)


def matches(rules: tuple[Rule, ...], text: str, low: str) -> bool:
    """True when any rule matches."""
    return any(r.search(text, low) for r in rules)


# --- 1. SQL injection ------------------------------------------------------------------------
# Everything after a quote that closes the attacker's string (one pattern, so the regex engine
# jumps from quote to quote instead of trying every position).
SQL_AFTER_QUOTE = (
    r"['\"`]\s*\)*\s*(?:"
    # ' OR '1'='1   " or ""="   ') or ('a'='a   (both sides the same literal: a tautology)
    r"\b(?:or|and|xor)\b\s*\(*\s*(?P<q>['\"`]?)(?P<v>[\w@.$-]*)(?P=q)"
    r"\s*(?:=|==|<=>|\blike\b)\s*\(*\s*['\"`]?(?P=v)(?![\w@.$])"
    # ' or userid like '%    ' or true--    ' or 1#    ' and 1=(select …
    r"|\b(?:or|and)\b\s+\w+\s+like\s+['\"]%"
    r"|\b(?:or|and|xor)\b\s+(?:true|false|not\b|\d+)\s*(?:--|#|/\*|;)"
    r"|\b(?:or|and)\b[^'\"\n]{0,30}\(\s*select\b"
    r"|(?:\b(?:or|and)\b|;|\|\||&&)\s*\(*\s*(?:select\s+)?(?:sleep|pg_sleep|benchmark)\s*\(\s*\d"
    # '; DROP TABLE users   "; exec xp_cmdshell   '; shutdown --
    r"|;\s*(?:drop\s+(?:table|database|user|schema)\b|delete\s+from\b|insert\s+into\b"
    r"|update\s+\w+\s+set\b|select\b[^;]{0,80}\bfrom\b"
    r"|select\s+(?:@@|\*|\d|null|char|sleep|pg_sleep|version|user|load_file)"
    r"|shutdown\b|exec(?:ute)?\s+(?:xp_|sp_|master\.)|declare\s+@|truncate\s+table\b"
    r"|waitfor\s+delay\b|create\s+(?:table|user|database)\b|alter\s+(?:table|user)\b"
    r"|grant\s+all\b)"
    # ' order by 1--   ' having 1=1
    r"|(?:order|group)\s+by\s+\d+\s*(?:--|#|/\*)"
    r"|having\s+\d+\s*=\s*\d+"
    r")"
)
UNION = r"union(?:\s+|/\*.*?\*/|\+)+(?:(?:all|distinct)(?:\s+|\+))?select"
SQL_RULES = (
    rule(("'", '"', "`"), SQL_AFTER_QUOTE),
    # admin'--   admin'#   ')/*
    rule(("'--", "'#", "'/*", '"--', '"#', "')", '")'), r"\w['\"]\)*(?:--|#|/\*)"),
    # UNION SELECT after a quote, paren, number or comment, or with probe columns
    rule(
        "union",
        rf"(?:['\"`)]|(?<![\w.])\d+|--|#|\*/)\s*(?:/\*.*?\*/\s*)*{UNION}\b",
        rf"\b{UNION}(?:\s+|\+|/\*.*?\*/)+(?:null\b|\d+\s*,|['\"]|@@|char\s*\(|concat|0x[0-9a-f]"
        r"|\(\s*select|version\s*\(|user\s*\(|database\s*\(|group_concat|load_file|table_name"
        r"|column_name)",
    ),
    # 1=1 shapes that start the text or follow a quote, and numeric chains (patterns start
    # with a literal where they can: the regex engine then skips ahead instead of trying
    # every position)
    rule(
        ("and", "or"),
        r"(?:^\s*\d*|['\")])\s*\b(?:and|or)\s+(?P<n>\d+)\s*=\s*(?P=n)\b",
        r"(?:and|or)\s+\d+\s*(?:[=<>]\s*\d+\s+(?:and|or)\s+['\"(]|=\s*\d+\s*(?:--|#|/\*))",
        also="=",
    ),
    rule("having", r"having\s+(?P<h>\d+)\s*=\s*(?P=h)\b"),
    rule("order", r"\border\s+by\s+(?:\d+\s*(?:--|#)|sleep\s*\()"),
    # time-based and out-of-band primitives with no benign spelling
    rule(
        "sleep",
        r"\bpg_sleep\s*\(\s*\d",
        r"(?<![.\w])sleep\s*\(\s*\d+\s*\)(?:\s*(?:--|/\*|=\s*['\"])|#)",
        r"\(\s*select\s*\(\s*sleep\s*\(",
    ),
    rule("waitfor", r"\bwaitfor\s+delay\s+['\"]\d"),
    rule("benchmark", r"\bbenchmark\s*\(\s*\d{4,}\s*,"),
    rule("xp_cmdshell", r"\bexec(?:ute)?\s+(?:master\.\.)?xp_cmdshell\b"),
    rule(
        ("char(", "chr(", "char (", "chr ("),
        r"\b(?:char|chr)\s*\(\s*\d+\s*\)\s*(?:\+|\|\||,)\s*(?:char|chr)\s*\(",
    ),
    rule(("outfile", "dumpfile"), r"\binto\s+(?:out|dump)file\s+['\"]"),
    rule("load_file", r"\bload_file\s*\(\s*(?:['\"]|0x)"),
    rule("select", r"\b(?:and|or)\s+\(?\s*select\s+\w+\s+from\s*\(\s*select\b"),
    rule(("extractvalue", "updatexml"), r"\b(?:extractvalue|updatexml)\s*\(\s*\d+\s*,"),
    rule(("utl_", "dbms_"), r"\butl_(?:inaddr|http)\.|\bdbms_pipe\.receive_message\b"),
    rule("copy", r"\bcopy\s+\w+\s+(?:from|to)\s+(?:program\b|['\"]/etc/)"),
)


def sql_injection(text: str, low: str) -> bool:
    """Quote-breaking tautologies, stacked statements, UNION probes, time-based primitives."""
    return matches(SQL_RULES, text, low)


# --- 2. NoSQL injection ----------------------------------------------------------------------
NOSQL_RULES = (
    rule("$where", r"\$where\b"),
    rule("[$", r"\[\s*\$(?:ne|gt|gte|lt|lte|regex|exists|in|nin|eq|or|and|not|where)\s*\]"),
    # {"$ne": 1}  {$gt: ''}  — operators whose operand makes them always true
    rule(
        "$",
        r"[{,]\s*['\"]?\$(?:ne|gt|gte|lt|lte|regex|nin|in)['\"]?\s*:\s*"
        r"(?:''|\"\"|null\b|-?1\b|0\b|true\b|false\b|\[\s*\]|\{\s*\}|['\"]?\.\*['\"]?|/\.\*/)"
        r"\s*[,}]",
        r"[{,]\s*['\"]?\$exists['\"]?\s*:\s*false\b",
    ),
    # JavaScript string breakouts into server-side evaluation
    rule(
        ("'", '"'),
        r"['\"]\s*(?:"
        r";\s*return\s*\(?\s*(?:true\b|['\"]\w*['\"]\s*==)"
        r"|(?:\|\||&&)\s*(?:this\.|['\"]\w*['\"]\s*==|\d+\s*==)"
        r"|;\s*(?:sleep\s*\(\s*\d{3,}|db\.\w+\.|\w+\s*=\s*new\s+date\s*\()"
        r")",
    ),
    rule("this.", r"\bthis\.\w+\.match\s*\(\s*/"),
    rule("||", r"\|\|\s*1\s*==\s*1"),
    rule("db.", r"\bdb\.\w+\.(?:insert|mapreduce)\s*\(\s*\{\s*success\b"),
)


def nosql_injection(text: str, low: str) -> bool:
    """``$where``, ``[$ne]=``, always-true operator objects, JavaScript string breakouts."""
    return matches(NOSQL_RULES, text, low)


# --- 3. Command injection --------------------------------------------------------------------
RECON = (
    r"(?:id|whoami|uname(?:\s+-[a-z]+)?|ifconfig|ipconfig|hostname|netstat(?:\s+-[a-z]+)?"
    r"|systeminfo|/usr/bin/id|/bin/id|/usr/bin/whoami|net\s+user|ver)"
)
DANGEROUS = (
    r"(?:cat\s+/etc/(?:passwd|shadow|group|hosts|issue)|/bin/(?:ba)?sh\b|(?:ba)?sh\s+-[ic]\b"
    r"|n(?:c|cat|etcat)\s+(?:-?\w+\s+)*-[a-z]*e\b|(?:wget|curl)\s+[^\s|;&]+\s*(?:\||-o|-O)"
    r"|rm\s+-[a-z]*[rf][a-z]*\s+/(?:\s|$|\*)|ping\s+-[cni]\s*\d+\s+127\."
    r"|python[23]?\s+-c\s|perl\s+-e\s|php\s+-r\s|ruby\s+-e\s|powershell\b|cmd(?:\.exe)?\s*/c\b"
    r"|echo\s+\S+\s*>\s*/|telnet\s|xterm\s|mkfifo\s|/dev/tcp/|chmod\s+[0-7]*\s*\+?s\b"
    r"|system\s*\(|\S*\\repair\\(?:sam|system)\b|echo\s+['\"]<\?php)"
)
SHELL_WORDS = (
    r"(?:ls|dir|pwd|cat|type|echo|sleep|ping|wget|curl|nc|ncat|netcat|net|netsh|reg|sysinfo"
    r"|systeminfo|id|whoami|uname|perl|python[23]?|php|ruby|bash|sh|cmd|powershell|system|which"
    r"|rm|chmod|nslookup|ifconfig|ipconfig|telnet|kill|reboot|shutdown|touch|find|env|exit|/\S+)"
)
COMMAND_RULES = (
    rule("() {", r"\(\)\s*\{\s*:?\s*;\s*\}\s*;"),  # shellshock
    # command substitution with a dangerous command anywhere, or nested
    rule(("$(", "`"), rf"(?:\$\(|`)\s*{DANGEROUS}", r"\$\(\s*`"),
    # substitution of a recon command right after a breakout character
    rule(("$(", "`"), rf"(?:^|[;|&'\"=])\s*(?:\$\(|`)\s*{RECON}\s*(?:\)|`)", flags=FLAGS | re.M),
    # ;id;  && whoami  — chaining into a recon command that ends there
    rule(
        (";", "&", "\n"),
        rf"[;&\n]\s*{RECON}\s*(?:[;|&#`'\"]|%0a|\\n|$)",
        rf"[;&]\s*{DANGEROUS}",
        flags=FLAGS | re.M,
    ),
    # %0aid  \nid (escaped newlines)
    rule(
        ("%0a", "%0d", "\\n"),
        rf"(?:%0a|%0d|\\n)\s*{RECON}\s*(?:[;|&#`'\"]|%0a|\\n|$)",
        rf"(?:%0a|%0d)\s*{DANGEROUS}",
        flags=FLAGS | re.M,
    ),
    # |id|  ||/usr/bin/id  (no blank after the pipe: "| id |" is a markdown table)
    rule(
        "|",
        rf"\|\|?{RECON}(?:[;|&#`'\"]|%0a|\\n|$)",
        rf"\|\s*{DANGEROUS}",
        flags=FLAGS | re.M,
    ),
    # a text that *starts* by chaining a command: "; dir", "| wget http://…", "&& sleep 5"
    rule(
        (";", "|", "&"),
        rf"\A\s*(?:;|&&?|\|\|?)\s*{SHELL_WORDS}"
        r"(?:\s+(?:-{1,2}\w|/|[a-z]:\\|%|\d|[\"'<$`~.(])|\s*\(|\s*\Z)",
    ),
    # reverse shells
    rule(
        ("/dev/tcp", "/bin/", "mkfifo", "import"),
        r"\bbash\s+-i\s+>&\s*/dev/tcp/|/dev/tcp/\d",
        r"\bn(?:c|cat|etcat)\s+(?:-?\w+\s+)*-[a-z]*e\s+/bin/(?:ba)?sh\b",
        r"\bmkfifo\s+/tmp/\w+\s*;",
        r"python[23]?\s+-c\s+['\"]import\s+(?:socket|pty|os)",
    ),
    # server-side includes and PHP evaluation
    rule("<!--", r"<!--\s*#\s*exec\s+cmd\s*="),
    rule("${", r"\{\s*\$\{\s*(?:phpinfo|sleep|system|exec|passthru|shell_exec)\s*\("),
    rule(
        "<?",
        r"<\?(?:php)?\s+(?:echo\s*\(?\s*)?(?:system|exec|passthru|shell_exec|eval|popen)\s*\(",
    ),
    rule("%0a", r"%0a\s*(?:cat|id|ping|whoami|uname|/usr/bin/|/bin/)"),
    rule("/bin/", r"\|\s*/usr/bin/id\b|\b/bin/cat\s+/etc/(?:passwd|shadow)"),
)


def command_injection(text: str, low: str) -> bool:
    """Chaining into recon or shell-spawning commands, dangerous substitutions, shellshock."""
    return matches(COMMAND_RULES, text, low)


# --- 4. Path traversal -----------------------------------------------------------------------
# Encoded dots in any spelling seen in the wild (plain, double, overlong UTF-8, %u, 0x).
P = r"%(?:25)*"
OVERLONG = rf"(?:c0|c1|e0{P}80|f0{P}80{P}80|f8(?:{P}80){{3}}|fc(?:{P}80){{4}})"
DOT_ENC = re.compile(
    rf"{P}{OVERLONG}{P}[2-9a-f]e|{P}c0\.|{P}2e|%u(?:ff0e|002e)|%%32%%65|0x2e", re.I
)
ENC_UNIT = re.compile(r"%u[0-9a-f]{4}|%+[0-9a-z]{1,2}|0x[0-9a-f]{2}", re.I)
CLIMB = re.compile(r"[.?]{2}[/\\\x01?]")
DOTTED_NOISE = re.compile(r"(?:\.[/\\\x01?]+){3,}")
TARGET = re.compile(
    r"(?:^|[/\\\x01?])(?:etc[/\\\x01?]+(?:passwd|shadow|issue|hosts|group|motd|sudoers|crontab)"
    r"|boot\.ini|win\.ini|system32|winnt|proc[/\\\x01?]+self|\.ssh[/\\\x01?]|\.htpasswd)"
)
TRAVERSAL_PATTERNS = re.compile(r"\x00|%00|%2500|\.\.\.\.//|\.\.;/|\.{3,}[/\\]{1,2}\.{2,}", re.I)
TRAVERSAL_TRIGGERS = ("..", "%", "\x00", "0x", "??")
LITERAL_CLIMBS = 5


def path_traversal(text: str, low: str) -> bool:
    """``../`` into system files, encoded or very deep ``../`` chains, NUL bytes.

    Each whitespace-free token is normalised (encoded dots → ``.``, other encoded bytes → a
    marker) and searched for climbs. A climb spelled with an encoding is refused outright; a
    literal ``../`` chain only when it reaches a system file or climbs five levels, because
    relative paths like ``../../src/app.py`` are everyday text.
    """
    if not any(t in low for t in TRAVERSAL_TRIGGERS):
        return False
    if TRAVERSAL_PATTERNS.search(low):
        return True
    for token in low.split():
        if ".." not in token and "%" not in token and "0x" not in token and "??" not in token:
            continue
        normal = ENC_UNIT.sub("\x01", DOT_ENC.sub(".", token))
        climbs = len(CLIMB.findall(normal))
        if not climbs:
            if DOTTED_NOISE.search(normal) and TARGET.search(normal):
                return True
            continue
        encoded = normal != token and ".." in normal
        if encoded or climbs >= LITERAL_CLIMBS or TARGET.search(normal):
            return True
    return False


# --- 5. XSS ----------------------------------------------------------------------------------
XSS_RULES = (
    rule("script", r"[<¼]\s*/?\s*script\b|\+adw-\s*/?\s*script"),
    # an event handler inside a tag, or right after a quote that closes an attribute
    rule(
        "on",
        r"<\s*[a-z][\w:-]*\b[^>]*?[\s/\"'`;]on[a-z]{3,}\s*=",
        r"['\"`]\s*/?\s*on[a-z]{3,}\s*=\s*\S",
    ),
    # script URIs (whitespace inside the scheme is a known bypass)
    rule(
        "script",
        r"\b(?:java|vb|live|mocha)\s*script\s*:(?=\S)",
        r"(?:href|src|action|formaction|data|background|lowsrc|dynsrc|xlink:href|to|url)"
        r"\s*=?\s*\(?\s*['\"`]?\s*(?:javascript|vbscript|livescript)\s*:",
    ),
    rule(
        "data",
        r"\bdata\s*:\s*(?:text/html|text/javascript|application/(?:x-)?javascript"
        r"|image/svg\+xml|application/xhtml)",
    ),
    rule(
        ("srcdoc", "formaction", "allowscriptaccess", "http-equiv"),
        r"<\s*[a-z]\w*\b[^>]*\b(?:srcdoc|formaction|allowscriptaccess"
        r"|http-equiv\s*=\s*['\"]?refresh)\b",
    ),
    rule(
        ("expr", "-moz-binding", "behavior", "@import", "x-scriptlet"),
        r"style\s*=\s*['\"]?[^'\">]*(?:expression\s*\(|behavior\s*:)",
        r"\bexpr(?:/\*.*?\*/)*ession\s*\((?=[^)]*\b(?:alert|eval|document|window)\b)",
        r"-moz-binding\s*:|<style[^>]*>[^<]*@import|text/x-scriptlet",
    ),
    rule("><", r"['\"`]\s*>\s*<\s*(?:img|svg|iframe|body|script|a|input|details|video)\b"),
    rule(
        ("document", "window"),
        r"\bdocument\s*\.\s*(?:cookie|domain|write\s*\()|\bwindow\s*\.\s*location\s*=",
    ),
    rule(
        ("alert", "prompt", "confirm"),
        r"\b(?:alert|prompt|confirm)\s*(?:\(|`)\s*(?:document\.|\d|['\"]?xss)",
    ),
    rule("fromcharcode", r"\bstring\s*\.\s*fromcharcode\s*\("),
    rule(("utf-7", "imap4"), r"charset\s*=\s*['\"]?(?:utf-7|x-imap4-modified-utf7)"),
)
JS_ESCAPES = re.compile(r"\\(?:x3c|u003c|x3e|u003e|x22|x27)", re.I)
SPLIT_HINT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\\]")
SPLITTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|\\x[01][0-9a-f]|\\0|&#0*9;|&#x0*9;", re.I)


def xss(text: str, low: str) -> bool:
    """Script tags, event handlers in tags, script/data URIs, CSS expressions."""
    if matches(XSS_RULES, text, low):
        return True
    if SPLIT_HINT.search(text):
        # controls or escapes used to split keywords: ja\x01vascript:, <script\x3e
        squeezed = JS_ESCAPES.sub(_js_unescape, SPLITTERS.sub("", text))
        return squeezed != text and matches(XSS_RULES, squeezed, squeezed.lower())
    return False


def _js_unescape(match: re.Match[str]) -> str:
    code = match.group(0)[2:].lower()
    return chr(int(code[1:] if code.startswith("u") else code, 16))


# --- 6. SSRF ---------------------------------------------------------------------------------
def ssrf(text: str, low: str) -> bool:
    """Cloud-metadata targets, obfuscated numeric hosts, exotic schemes (see ``ssrf.py``)."""
    return text_mentions_ssrf(text)


# --- 7. Header injection (CRLF) --------------------------------------------------------------
CRLF_RULES = (
    # an encoded CR or LF (any encoding) followed by something shaped like a header
    rule(
        ("%", "\\u000"),
        r"(?:%0d|%0a|%250d|%250a|%25250a|%%30a|%%0a0a|%25%30[ad]|%u000[ad]|%e5%98%8a"
        r"|%e5%98%8d|%c4%8a|%c4%8d|\\u000[ad])+\s*[a-z][\w-]{1,40}\s*:",
    ),
    # a literal line break into a header only ever injected
    rule("set-cookie", r"[\r\n]\s*set-cookie\s*:"),
)


def header_injection(text: str, low: str) -> bool:
    """Encoded CR/LF followed by a header line, or a literal break into ``Set-Cookie:``."""
    return matches(CRLF_RULES, text, low)


# What a rule can match in text made only of word characters, spaces and ".,-".
PLAIN_TEXT = re.compile(r"[\w .,\-]*")
PLAIN_KEYWORDS = (
    "--", "union", "0x", "xp_cmdshell", "utl_", "dbms_", "program", "169.254.", "100.100.100.200",
    "metadata.google.internal",
)  # fmt: skip
DETECTORS: tuple[tuple[str, Detector], ...] = (
    (TRAVERSAL, path_traversal),
    (CRLF, header_injection),
    (SSRF, ssrf),
    (XSS, xss),
    (SQL, sql_injection),
    (NOSQL, nosql_injection),
    (COMMAND, command_injection),
)


def detect_raw(text: str) -> str | None:
    """The first category found in ``text`` as given (no decoding), or None."""
    low = text.lower()
    for category, detector in DETECTORS:
        if detector(text, low):
            return category
    return None


def plain(text: str) -> bool:
    """True for text no detector can match: word characters, spaces, ``.,-`` and no keyword.

    Ids, tags, names and most metadata values are like this, so they skip the detectors.
    ``tests/security/test_validation.py`` checks this shortcut against ``detect_raw``.
    """
    if PLAIN_TEXT.fullmatch(text) is None:
        return False
    low = text.lower()
    return not any(word in low for word in PLAIN_KEYWORDS)


def detect(text: str) -> str | None:
    """The first injection category found in ``text`` or its decoded forms, or None.

    Variants: the text itself; its percent-decoded form (twice, for double encoding) when it
    contains ``%``; its HTML-entity-decoded form when it contains ``&#`` or ``&…;``.
    """
    if plain(text):
        return None
    found = detect_raw(text)
    if found is not None:
        return found
    variants: list[str] = []
    if "%" in text:
        once = unquote(text, errors="replace")
        variants.append(once)
        twice = unquote(once, errors="replace")
        if twice != once:
            variants.append(twice)
    if "&#" in text or ("&" in text and ";" in text):
        variants.extend(html.unescape(v) for v in [text, *variants])
    for variant in variants:
        if variant != text:
            found = detect_raw(variant)
            if found is not None:
                return found
    return None
