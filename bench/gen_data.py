#!/usr/bin/env python3
"""Benchmark data set: one CRM account, the same data for switchboard and Kamailio.

    bench/gen_data.py --out DIR [--users 10000] [--numbers 20000] [--contacts 100000]
                      [--calls 50000] [--mix 40,30,20,10] [--seed 4] ...

Writes into DIR (python3 stdlib only; the same flags give byte-identical files):

  routing.yaml        switchboard's routing schema (docs/routing.md): one account,
                      region DE, switchboard's defaults (ring_number_user_first: true,
                      when_user_has_no_phone: reject), no account forward_to, every
                      number with its own forward_to. Every phone is E.164, so no
                      national spelling and no libphonenumber reading is involved.
  kamailio/           db_text tables read by bench/kamailio/redirect.cfg into htables:
                        did_user      number -> phone of its user, "-" if the user has none
                                      (only assigned numbers: rule 1)
                        did_forward   number -> its forward_to (every number: rule 3;
                                      a number missing here is unknown: 404)
                        contact_user  phone of an assigned contact -> phone of its owner,
                                      "-" if the owner has none (rule 2)
                      The joins (number -> user -> phone, contact -> user -> phone) are
                      made here, once, as switchboard makes them when it loads its data.
  calls.csv           SIPp-style, first line SEQUENTIAL, then `dialed;caller;expected`,
                      expected being 302:<phone>, 480 or 404.
  summary.txt         sizes, seed, the call mix and the expected answers.

Data (defaults): 10,000 users, 5% of them without a phone; 20,000 numbers in blocks of
100 consecutive numbers in German cities, half of them assigned to a random user, every
number forwarded to one of 1,000 reception numbers; 100,000 CRM contacts (a tenth with two
phones) in eight countries, 70% assigned to a random user.

Calls (default mix 40,30,20,10, in percent):
  rule 1   an assigned number; the caller is half the time an assigned contact (of
           any user), so rule 1 has to win over rule 2; else an unassigned contact or
           a stranger -> 302 to the number's user's phone, or 480 (user without phone)
  rule 2   an unassigned number, the caller an assigned contact -> 302 to the contact's
           owner's phone, or 480
  rule 3   an unassigned number, the caller half the time an unassigned contact, half a
           stranger -> 302 to the number's forward_to
  unknown  a number nobody has (half the time from an assigned contact) -> 404
The rows are shuffled. Only what Kamailio's config reproduces is used: no national
spellings, no SIP URI phones, no contact phone of two users, no account
forward_to, no `ring_number_user_first: false`, no `when_user_has_no_phone: forward`.

`switchboard check routing.yaml` reports no error. It warns once for every user without
a phone that numbers or contacts route calls to (about 480 of them): those users are
there on purpose, they are where the 480s come from.
"""
import argparse
import os
import random
import sys

FIRST = ("Anna Ben Clara David Emma Felix Greta Hannah Ilias Jonas Katrin Lena Marco Nina "
         "Oskar Paula Quentin Rosa Stefan Tara Ulrich Vera Wim Xenia Yusuf Zoe").split()
LAST = ("Albrecht Bauer Conrad Dietrich Engel Fischer Graf Hartmann Ibsen Jung Keller Lang "
        "Meyer Neumann Otto Peters Richter Schmidt Thiel Ullmann Vogel Wagner Zimmer").split()

# Area codes (without the trunk 0) of German cities and how many subscriber digits
# their numbers have; a block is 100 consecutive numbers (the last two digits).
DID_AREAS = (("30", 8), ("40", 8), ("89", 8), ("69", 8), ("221", 7), ("711", 7), ("211", 7))

# Mobile numbers by country: (E.164 prefix including the mobile range, digits after it).
MOBILE = {
    "DE": (("+49151", 8), ("+49152", 8), ("+49157", 8), ("+49170", 7), ("+49171", 7),
           ("+49175", 7)),
    "AT": (("+43664", 7), ("+43676", 7), ("+43699", 8)),
    "CH": (("+4176", 7), ("+4177", 7), ("+4178", 7), ("+4179", 7)),
    "FR": (("+336", 8), ("+337", 8)),
    "GB": (("+4474", 8), ("+4475", 8), ("+4477", 8), ("+4478", 8), ("+4479", 8)),
    "NL": (("+316", 8),),
    "IT": (("+39320", 7), ("+39333", 7), ("+39347", 7), ("+39388", 7)),
    "US": tuple(("+1" + npa, 7) for npa in ("212", "312", "415", "617", "650", "206")),
}
# CRM contacts by country, in percent.
CONTACT_COUNTRIES = (("DE", 40), ("AT", 10), ("CH", 10), ("FR", 10), ("GB", 10),
                     ("NL", 5), ("IT", 5), ("US", 10))


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.used = set()        # every phone number handed out, of any kind

    def digits(self, n):
        # no leading 0 or 1: valid as a subscriber number everywhere used here
        return str(self.rng.randrange(2, 10)) + "".join(
            str(self.rng.randrange(10)) for _ in range(n - 1))

    def mobile(self, country):
        while True:
            prefix, n = self.rng.choice(MOBILE[country])
            number = prefix + self.digits(n)
            if number not in self.used:
                self.used.add(number)
                return number

    def landline(self):
        """A German geographic number (receptions, strangers' landlines)."""
        while True:
            area, n = self.rng.choice(DID_AREAS)
            number = "+49" + area + self.digits(n)
            if number not in self.used:
                self.used.add(number)
                return number

    def did_blocks(self, count, block):
        numbers, bases = [], set()
        while len(numbers) < count:
            area, n = self.rng.choice(DID_AREAS)
            base = "+49" + area + self.digits(n - 2)
            if base in bases:
                continue
            block_numbers = ["%s%02d" % (base, i) for i in range(block)]
            if any(b in self.used for b in block_numbers):
                continue
            bases.add(base)
            for b in block_numbers[:count - len(numbers)]:
                self.used.add(b)
                numbers.append(b)
        return numbers

    def name(self):
        return "%s %s" % (self.rng.choice(FIRST), self.rng.choice(LAST))


def percent_split(total, weights):
    """Split total into len(weights) integer parts proportional to weights."""
    s = sum(weights)
    parts = [total * w // s for w in weights]
    for i in range(total - sum(parts)):
        parts[i % len(parts)] += 1
    return parts


def q(s):
    return '"' + s + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--no-phone-pct", type=float, default=5.0,
                    help="users without a phone, in percent (5)")
    ap.add_argument("--numbers", type=int, default=20000)
    ap.add_argument("--block", type=int, default=100, help="numbers per block (100, at most 100)")
    ap.add_argument("--assigned-pct", type=float, default=50.0,
                    help="numbers assigned to a user, in percent (50)")
    ap.add_argument("--forwards", type=int, default=1000,
                    help="distinct forwarding numbers (1000)")
    ap.add_argument("--contacts", type=int, default=100000)
    ap.add_argument("--contact-assigned-pct", type=float, default=70.0,
                    help="contacts assigned to a user, in percent (70)")
    ap.add_argument("--two-phone-pct", type=float, default=10.0,
                    help="contacts with two phones, in percent (10)")
    ap.add_argument("--calls", type=int, default=50000)
    ap.add_argument("--mix", default="40,30,20,10",
                    help="percent of calls by rule 1, rule 2, rule 3, unknown number")
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()

    mix = [int(x) for x in a.mix.split(",")]
    if len(mix) != 4 or min(mix) < 0 or sum(mix) == 0:
        ap.error("--mix takes four non-negative percentages, e.g. 40,30,20,10")
    if not 1 <= a.block <= 100:
        ap.error("--block must be 1..100")
    if a.users < 1 or a.numbers < 2 or a.contacts < 2 or a.forwards < 1 or a.calls < 1:
        ap.error("sizes must be positive (at least 2 numbers and 2 contacts)")

    g = Gen(a.seed)
    rng = g.rng

    # --- users ------------------------------------------------------------------
    user_ids = ["u%05d" % (i + 1) for i in range(a.users)]
    phoneless = set(rng.sample(range(a.users), round(a.users * a.no_phone_pct / 100)))
    users = []                         # (id, name, phone or None)
    for i, uid in enumerate(user_ids):
        users.append((uid, g.name(), None if i in phoneless else g.mobile("DE")))
    phone_of = {uid: phone for uid, _, phone in users}

    # --- numbers ------------------------------------------------------------------
    forwards = [g.landline() for _ in range(a.forwards)]
    dids = g.did_blocks(a.numbers, a.block)
    n_assigned = round(a.numbers * a.assigned_pct / 100)
    n_assigned = min(max(n_assigned, 1), a.numbers - 1)
    assigned_idx = set(rng.sample(range(a.numbers), n_assigned))
    numbers = []                       # (number, forward_to, user id or None)
    for i, did in enumerate(dids):
        user = user_ids[rng.randrange(a.users)] if i in assigned_idx else None
        numbers.append((did, rng.choice(forwards), user))

    # --- contacts -----------------------------------------------------------------
    countries = []
    for (country, _), n in zip(CONTACT_COUNTRIES,
                               percent_split(a.contacts, [w for _, w in CONTACT_COUNTRIES])):
        countries += [country] * n
    rng.shuffle(countries)
    n_c_assigned = round(a.contacts * a.contact_assigned_pct / 100)
    n_c_assigned = min(max(n_c_assigned, 1), a.contacts - 1)
    c_assigned_idx = set(rng.sample(range(a.contacts), n_c_assigned))
    contacts = []                      # (name, [phones], user id or None)
    for i, country in enumerate(countries):
        phones = [g.mobile(country)]
        if rng.random() * 100 < a.two_phone_pct:
            phones.append(g.mobile(country))
        user = user_ids[rng.randrange(a.users)] if i in c_assigned_idx else None
        contacts.append((g.name(), phones, user))

    # --- calls --------------------------------------------------------------------
    assigned_dids = [(d, u) for d, _, u in numbers if u]
    unassigned_dids = [(d, f) for d, f, u in numbers if not u]
    owned_phones = [(p, u) for _, ps, u in contacts if u for p in ps]
    free_phones = [p for _, ps, u in contacts if not u for p in ps]

    def stranger():
        # a German landline or a mobile nobody in the data has
        return g.landline() if rng.random() < 0.5 else g.mobile(rng.choice(("DE", "AT", "FR")))

    def unknown_did():
        while True:
            area, n = rng.choice(DID_AREAS)
            number = "+49" + area + g.digits(n)
            if number not in g.used:
                return number          # not kept in g.used: it may come up again

    def answer(uid):
        phone = phone_of[uid]
        return "302:" + phone if phone else "480"

    kinds = []
    for kind, n in zip(("rule1", "rule2", "rule3", "unknown"), percent_split(a.calls, mix)):
        kinds += [kind] * n
    rng.shuffle(kinds)
    rows = []
    for kind in kinds:
        if kind == "rule1":
            did, uid = rng.choice(assigned_dids)
            r = rng.random()
            if r < 0.5:
                caller = rng.choice(owned_phones)[0]
            elif r < 0.75:
                caller = rng.choice(free_phones)
            else:
                caller = stranger()
            rows.append((did, caller, answer(uid), kind))
        elif kind == "rule2":
            did, _ = rng.choice(unassigned_dids)
            caller, uid = rng.choice(owned_phones)
            rows.append((did, caller, answer(uid), kind))
        elif kind == "rule3":
            did, fwd = rng.choice(unassigned_dids)
            caller = rng.choice(free_phones) if rng.random() < 0.5 else stranger()
            rows.append((did, caller, "302:" + fwd, kind))
        else:
            caller = rng.choice(owned_phones)[0] if rng.random() < 0.5 else stranger()
            rows.append((unknown_did(), caller, "404", kind))

    # --- files --------------------------------------------------------------------
    out = a.out
    kdir = os.path.join(out, "kamailio")
    os.makedirs(kdir, exist_ok=True)
    args_line = ("--users %d --no-phone-pct %g --numbers %d --block %d --assigned-pct %g "
                 "--forwards %d --contacts %d --contact-assigned-pct %g --two-phone-pct %g "
                 "--calls %d --mix %s --seed %d"
                 % (a.users, a.no_phone_pct, a.numbers, a.block, a.assigned_pct, a.forwards,
                    a.contacts, a.contact_assigned_pct, a.two_phone_pct, a.calls, a.mix, a.seed))

    with open(os.path.join(out, "routing.yaml"), "w") as f:
        f.write("# Benchmark data written by bench/gen_data.py %s\n" % args_line)
        f.write("# Generated: do not edit. Kamailio's copy is in kamailio/.\n")
        f.write("accounts:\n"
                "  - id: bench\n"
                "    region: DE\n"
                "    ring_number_user_first: true\n"
                "    when_user_has_no_phone: reject\n"
                "    users:\n")
        for uid, name, phone in users:
            extra = ", phone: " + q(phone) if phone else ""
            f.write("      - {id: %s, name: %s%s}\n" % (uid, q(name), extra))
        f.write("    numbers:\n")
        for did, fwd, uid in numbers:
            extra = ", user: " + uid if uid else ""
            f.write("      - {number: %s, forward_to: %s%s}\n" % (q(did), q(fwd), extra))
        f.write("    contacts:\n")
        for name, phones, uid in contacts:
            extra = ", user: " + uid if uid else ""
            f.write("      - {name: %s, phones: [%s]%s}\n"
                    % (q(name), ", ".join(q(p) for p in phones), extra))

    def table(name, pairs):
        # db_text: a header naming the columns, then one `key:value` row per line
        # (no value here contains ':', '\\' or a line break, so nothing is escaped)
        with open(os.path.join(kdir, name), "w") as f:
            f.write("key(str) value(str)\n")
            for k, v in pairs:
                f.write("%s:%s\n" % (k, v))
        return len(pairs)

    n_did_user = table("did_user", [(d, phone_of[u] or "-") for d, _, u in numbers if u])
    n_did_fwd = table("did_forward", [(d, fw) for d, fw, _ in numbers])
    n_contact = table("contact_user", [(p, phone_of[u] or "-") for p, u in owned_phones])

    with open(os.path.join(out, "calls.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for did, caller, exp, _ in rows:
            f.write("%s;%s;%s\n" % (did, caller, exp))

    by_kind, by_status = {}, {}
    for _, _, exp, kind in rows:
        status = exp.split(":")[0]
        by_kind.setdefault(kind, {}).setdefault(status, 0)
        by_kind[kind][status] += 1
        by_status[status] = by_status.get(status, 0) + 1
    labels = {"rule1": "rule 1 (number's user)", "rule2": "rule 2 (contact's owner)",
              "rule3": "rule 3 (forwarding)", "unknown": "unknown number"}
    lines = [
        "bench/gen_data.py " + args_line,
        "users: %d (%d without phone)" % (len(users), len(phoneless)),
        "numbers: %d in blocks of %d, %d assigned to users, each with one of %d forwarding numbers"
        % (len(numbers), a.block, n_assigned, len(forwards)),
        "contacts: %d (%d assigned), %d phones, %d of them of assigned contacts; countries %s"
        % (len(contacts), n_c_assigned, len(owned_phones) + len(free_phones), len(owned_phones),
           " ".join("%s %d%%" % c for c in CONTACT_COUNTRIES)),
        "kamailio tables: did_user %d, did_forward %d, contact_user %d rows"
        % (n_did_user, n_did_fwd, n_contact),
        "calls: %d rows" % len(rows),
    ]
    for kind in ("rule1", "rule2", "rule3", "unknown"):
        st = by_kind.get(kind, {})
        n = sum(st.values())
        lines.append("  %-26s %6d  %5.1f%%   %s" % (
            labels[kind], n, 100.0 * n / len(rows),
            ", ".join("%s x %d" % (s, c) for s, c in sorted(st.items()))))
    lines.append("expected answers: " + ", ".join(
        "%s x %d (%.1f%%)" % (s, c, 100.0 * c / len(rows)) for s, c in sorted(by_status.items())))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    sys.stdout.write("written to %s\n" % out)


if __name__ == "__main__":
    main()
