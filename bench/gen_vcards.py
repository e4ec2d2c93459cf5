#!/usr/bin/env python3
"""Writes, edits, deletes and checks folders of realistic vCard 3.0 files for the benchmarks.

A folder holds one `<uid>.vcf` per contact (a "vdir", as vdirsyncer and Tandem's
vdir store read it). Output is deterministic for a given seed, so two tools can
be given identical inputs and identical edits. Standard library only.

    gen_vcards.py gen DIR N [--seed S]          write N new cards into DIR
    gen_vcards.py modify DIR [--percent P] [--seed S] [--tag T]
                                                change TITLE or NOTE of P% of the cards
    gen_vcards.py delete DIR [--percent P] [--seed S]
                                                delete P% of the cards
    gen_vcards.py check DIR                     parse every card strictly; exit 1 on any error
    gen_vcards.py count-tag DIR TAG             how many cards carry an edit made with --tag TAG

`modify` and `delete` print how many cards they touched. `modify` writes the text "bench edit TAG" into the changed property, so a
benchmark can check afterwards that the edit reached the other side.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import unicodedata
import uuid
from pathlib import Path

FIRST = [
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ingrid",
    "José", "Kofi", "Léa", "Marta", "Nikolai", "Olivia", "Pedro", "Qing", "Rahul",
    "Sofia", "Tomás", "Uma", "Viktor", "Wei", "Ximena", "Yusuf", "Zoë", "Émile",
    "Aoife", "Björn", "Chiara", "Dmitri", "Ewa", "Fatima", "Günther", "Hana",
]
LAST = [
    "Smith", "Müller", "García", "Rossi", "Nowak", "Kim", "Tanaka", "Okafor",
    "Dubois", "Johansson", "O'Brien", "van der Berg", "Kowalski", "Silva",
    "Nguyen", "Papadopoulos", "Schmidt", "Martínez", "Cohen", "Ivanova",
    "Larsen", "Fischer", "Moreau", "Haddad", "Singh", "Andersen", "Bianchi",
]
ORGS = [
    "Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries",
    "Wayne Enterprises", "Hooli", "Pied Piper", "Vandelay Industries",
    "Soylent, Inc.", "Tyrell Corporation", "Cyberdyne Systems", "Aperture Science",
    "Stadtwerke Köln", "Banco del Sur", "Nordic Timber AB",
]
UNITS = ["Sales", "Engineering", "Finance", "Research", "Support", "Legal", "Operations"]
TITLES = [
    "Engineer", "Senior Engineer", "Account Manager", "Director of Sales",
    "CFO", "Product Manager", "Designer", "Consultant", "Researcher",
    "Support Lead", "Head of Operations", "Intern", "Attorney", "Architect",
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "corp.example"]
STREETS = [
    "Main St", "Oak Avenue", "Hauptstraße", "Rue de la Paix", "Calle Mayor",
    "High Street", "Elm Road", "Via Roma", "Kungsgatan", "Market Square",
]
CITIES = [
    ("Springfield", "IL", "62701", "USA"), ("Berlin", "", "10115", "Germany"),
    ("Paris", "", "75002", "France"), ("Madrid", "", "28013", "Spain"),
    ("London", "", "SW1A 1AA", "United Kingdom"), ("Stockholm", "", "111 52", "Sweden"),
    ("Toronto", "ON", "M5H 2N2", "Canada"), ("Osaka", "", "530-0001", "Japan"),
]
CATEGORIES = ["friends", "family", "work", "clients", "suppliers", "vip", "school", "sports"]
NOTES = [
    "Met at the conference in Lisbon; interested in the API, follow up in Q3.",
    "Prefers phone calls in the morning. Allergic to peanuts.",
    "Old college friend, ask about the kids (Mia, Leo).",
    "Invoice questions go to accounting; CC the assistant on everything.",
    "Introduced by a mutual friend; speaks German, French and a bit of Italian.",
    "Board member since 2019. Birthday party every year in June; send a card; likes jazz, "
    "sailing and old maps; do not call on Sundays.",
]
X_PROPS = [
    ("X-ANNIVERSARY", lambda r: f"{r.randint(1980, 2020)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"),
    ("X-SOCIALPROFILE;TYPE=mastodon", lambda r: f"https://social.example/@user{r.randint(1, 99999)}"),
    ("X-ABLABEL", lambda r: r.choice(["assistant", "manager", "partner", "school"])),
    ("X-PHONETIC-LAST-NAME", lambda r: r.choice(["Myuuraa", "Tanaka", "Kimu"])),
]

EDIT_MARK = "bench edit"


def escape(text: str) -> str:
    """Escapes a TEXT value as RFC 2426 requires."""
    return (
        text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")
    )


def fold(line: str) -> str:
    """Folds one content line to at most 75 octets per physical line, never inside a UTF-8 sequence."""
    out: list[str] = []
    current = ""
    size = 0
    limit = 75
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append(current)
            current = " "
            size = 1
        current += ch
        size += n
    out.append(current)
    return "\r\n".join(out)


def unfold(text: str) -> list[str]:
    """Splits a card into logical content lines."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw.startswith((" ", "\t")) and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def render(lines: list[str]) -> str:
    return "".join(fold(line) + "\r\n" for line in lines)


def phone(r: random.Random) -> str:
    return f"+{r.choice(['1', '44', '49', '33', '34', '81'])} {r.randint(200, 999)} {r.randint(100, 999)} {r.randint(1000, 9999)}"


def make_card(r: random.Random, index: int) -> tuple[str, list[str]]:
    uid = str(uuid.UUID(int=r.getrandbits(128), version=4))
    first, last = r.choice(FIRST), r.choice(LAST)
    org = r.choice(ORGS)
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Tandem//bench gen_vcards//EN",
        f"UID:{uid}",
        f"FN:{escape(first + ' ' + last)}",
        f"N:{escape(last)};{escape(first)};;;",
        f"ORG:{escape(org)};{escape(r.choice(UNITS))}",
        f"TITLE:{escape(r.choice(TITLES))}",
    ]
    login = (first + "." + last).lower().replace(" ", "").replace("'", "")
    login = unicodedata.normalize("NFKD", login).encode("ascii", "ignore").decode() or f"user{index}"
    lines.append(f"EMAIL;TYPE=INTERNET,WORK,pref:{login}{index}@{r.choice(DOMAINS)}")
    if r.random() < 0.5:
        lines.append(f"EMAIL;TYPE=INTERNET,HOME:{login}.{index}@{r.choice(DOMAINS)}")
    lines.append(f"TEL;TYPE={r.choice(['CELL', 'WORK,VOICE'])}:{phone(r)}")
    if r.random() < 0.6:
        lines.append(f"TEL;TYPE={r.choice(['HOME,VOICE', 'WORK,FAX'])}:{phone(r)}")
    if r.random() < 0.4:
        city, region, code, country = r.choice(CITIES)
        street = f"{r.randint(1, 250)} {r.choice(STREETS)}"
        parts = ["", "", street, city, region, code, country]
        lines.append(f"ADR;TYPE={r.choice(['HOME', 'WORK'])}:" + ";".join(escape(p) for p in parts))
    if r.random() < 0.3:
        lines.append(f"NOTE:{escape(r.choice(NOTES))}")
    cats = r.sample(CATEGORIES, r.randint(1, 3))
    lines.append("CATEGORIES:" + ",".join(escape(c) for c in cats))
    if r.random() < 0.25:
        name, value = r.choice(X_PROPS)
        lines.append(f"{name}:{value(r)}")
    lines.append(f"REV:20{r.randint(15, 24)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z")
    lines.append("END:VCARD")
    return uid, lines


def write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + ".gen-tmp")
    tmp.write_bytes(data.encode("utf-8"))
    os.replace(tmp, path)


def cmd_gen(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    r = random.Random(args.seed)
    for i in range(args.n):
        uid, lines = make_card(r, i)
        (folder / f"{uid}.vcf").write_bytes(render(lines).encode("utf-8"))
    print(f"wrote {args.n} cards into {folder}", file=sys.stderr)
    return 0


def pick(folder: Path, percent: float, seed: int) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".vcf")
    count = min(len(files), max(1, round(len(files) * percent / 100))) if files else 0
    return random.Random(seed).sample(files, count)


def cmd_modify(args: argparse.Namespace) -> int:
    r = random.Random(args.seed ^ 0x5EED)
    chosen = pick(Path(args.dir), args.percent, args.seed)
    for path in chosen:
        lines = unfold(path.read_text(encoding="utf-8"))
        has_note = any(line.startswith("NOTE") for line in lines)
        target = "NOTE" if has_note and r.random() < 0.5 else "TITLE"
        value = f"{EDIT_MARK} {args.tag} {r.randint(0, 10**6)}"
        new = []
        for line in lines:
            name = line.split(":", 1)[0].split(";", 1)[0].upper()
            if name == target:
                line = f"{target}:{escape(value)}"
            new.append(line)
        write_atomic(path, render(new))
    print(f"modified {len(chosen)} cards in {args.dir}", file=sys.stderr)
    print(len(chosen))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    chosen = pick(Path(args.dir), args.percent, args.seed)
    for path in chosen:
        path.unlink()
    print(f"deleted {len(chosen)} cards in {args.dir}", file=sys.stderr)
    print(len(chosen))
    return 0


def check_card(path: Path) -> str | None:
    """Returns why the card is malformed, or None when it parses."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8: {e}"
    if "\r\n" not in raw or raw.replace("\r\n", "").count("\n"):
        return "lines must end in CRLF"
    for physical in raw.split("\r\n"):
        if len(physical.encode("utf-8")) > 75:
            return "unfolded line longer than 75 octets"
    lines = unfold(raw)
    if not lines or lines[0] != "BEGIN:VCARD" or lines[-1] != "END:VCARD":
        return "must start with BEGIN:VCARD and end with END:VCARD"
    names = []
    for line in lines:
        if ":" not in line:
            return f"content line without ':': {line!r}"
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if not name or not all(c.isalnum() or c == "-" for c in name):
            return f"bad property name in {line!r}"
        names.append(name)
    if names.count("BEGIN") != 1 or names.count("END") != 1:
        return "nested or repeated BEGIN/END"
    if "VERSION:3.0" not in lines:
        return "missing VERSION:3.0"
    for required in ("UID", "FN", "N"):
        if names.count(required) != 1:
            return f"needs exactly one {required}"
    uid = next(line.split(":", 1)[1] for line in lines if line.startswith("UID:"))
    if path.stem != uid:
        return f"file name {path.name} does not match UID {uid}"
    return None


def cmd_check(args: argparse.Namespace) -> int:
    files = sorted(p for p in Path(args.dir).iterdir() if p.suffix == ".vcf")
    bad = 0
    for path in files:
        why = check_card(path)
        if why:
            bad += 1
            if bad <= 10:
                print(f"{path.name}: {why}", file=sys.stderr)
    print(f"checked {len(files)} cards in {args.dir}: {bad} malformed", file=sys.stderr)
    return 1 if bad or not files else 0


def cmd_count_tag(args: argparse.Namespace) -> int:
    needle = f"{EDIT_MARK} {args.tag} ".encode()
    count = 0
    for entry in os.scandir(args.dir):
        if entry.name.endswith(".vcf"):
            with open(entry.path, "rb") as f:
                if needle in f.read().replace(b"\r\n ", b""):
                    count += 1
    print(count)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gen", help="write N new cards into DIR")
    p.add_argument("dir")
    p.add_argument("n", type=int)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_gen)

    p = sub.add_parser("modify", help="change TITLE or NOTE of P%% of the cards in DIR")
    p.add_argument("dir")
    p.add_argument("--percent", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tag", default="1", help="written into the new value, for count-tag")
    p.set_defaults(func=cmd_modify)

    p = sub.add_parser("delete", help="delete P%% of the cards in DIR")
    p.add_argument("dir")
    p.add_argument("--percent", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=2)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("check", help="parse every card in DIR strictly")
    p.add_argument("dir")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("count-tag", help="count cards in DIR edited with --tag TAG")
    p.add_argument("dir")
    p.add_argument("tag")
    p.set_defaults(func=cmd_count_tag)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
