"""Rule evaluation cost: the built-in pack and a 1,000-rule set against a baseline of one trivial rule.

All sets see the same stream of generated ProcessStarted events (mostly ordinary outlet work, a few
tool starts) in the same run, so the ratios do not depend on the machine. Reported:
- per-event cost and rule evaluations per second (events x rules / time) of each set;
- the built-in pack and the 1,000-rule set against the one-rule baseline;
- the 1,000-rule set with the literal prefilter against the same rules evaluated one by one
  (what a naive loop over every rule would cost).
The last line is one JSON object. Runs in well under 30 s.

    .venv/bin/python bench/bench_rules.py [--events 3000] [--rules 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.rules import RuleSet, builtin_rules, builtin_texts
from agent.rules.fields import make_record, process_fields
from agent.rules.loader import CompiledRule, load_text
from agent.sensors.observations import ProcessInfo, ProcessStarted

ORDINARY = [
    (r"C:\Program Files\Google\Chrome\Application\chrome.exe", '"{exe}" --type=renderer --lang=zh-CN '
     "--enable-features=NetworkService --field-trial-handle={n},i,{m} /prefetch:1"),
    (r"C:\Program Files\Google\Chrome\Application\chrome.exe", '"{exe}" --profile-directory=Default'),
    (r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe", '"{exe}" --single-argument https://portal'
     ".example/waybills?page={n}"),
    (r"C:\Windows\System32\svchost.exe", r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule"),
    (r"C:\Windows\System32\conhost.exe", r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1"),
    (r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE", r'"{exe}" "C:\Users\clerk\Desktop\report{n}.xlsx"'),
    (r"C:\Windows\System32\notepad.exe", r"notepad.exe C:\Users\clerk\Desktop\notes{n}.txt"),
    (r"C:\Program Files\Tencent\WeChat\WeChat.exe", '"{exe}"'),
    (r"C:\Program Files\Courier\OutletClient\OutletClient.exe", '"{exe}" --login --outlet {n}'),
    (r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", r"powershell.exe -File C:\IT\inventory{n}.ps1"),
    ("/usr/bin/python3.11", "python3 -m http.server {n}"),
    ("/usr/lib/firefox-esr/firefox-esr", "firefox-esr -contentproc -childID {n} -isForBrowser"),
]
TOOLS = [
    ("/usr/bin/chromedriver", "chromedriver --port={n}"),
    (r"C:\Program Files\ToDesk\ToDesk.exe", '"{exe}"'),
    (r"C:\Users\clerk\AppData\Local\Programs\Python\Python311\python.exe", "python.exe scrape_waybills.py --page {n}"),
    (r"C:\frp\frpc.exe", r"frpc.exe -c C:\frp\frpc.ini"),
]


def events(count: int, seed: int = 7) -> list[ProcessStarted]:
    rng = random.Random(seed)
    parent = ProcessInfo(pid=812, name="explorer.exe", exe=r"C:\Windows\explorer.exe",
                         cmdline=(r"C:\Windows\Explorer.EXE",))
    out = []
    for i in range(count):
        exe, template = rng.choice(TOOLS) if rng.random() < 0.02 else rng.choice(ORDINARY)
        line = template.format(exe=exe, n=rng.randrange(1, 99999), m=rng.randrange(1, 99999))
        name = exe.replace("\\", "/").rsplit("/", 1)[-1]
        info = ProcessInfo(pid=10_000 + i, name=name, ppid=812, exe=exe, cmdline=(line,), user="OUTLET\\clerk",
                           exe_sha256=f"{rng.getrandbits(256):064x}")
        out.append(ProcessStarted(process=info, parent=parent, observed_at=1_800_000_000.0 + i))
    return out


def synthetic_rules(count: int, seed: int = 11) -> list[tuple[str, str]]:
    """SigmaHQ-shaped process rules: image lists, command-line lists, filters, some regexes and keywords."""
    rng = random.Random(seed)

    def word(n: int = 8) -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))

    texts = []
    for i in range(count):
        kind = rng.random()
        images = "\n".join(f"            - '\\{word()}.exe'" for _ in range(rng.randint(1, 4)))
        flags = "\n".join(f"            - ' -{word(5)}'" for _ in range(rng.randint(1, 5)))
        if kind < 0.55:
            detection = (f"    selection_img:\n        Image|endswith:\n{images}\n"
                         f"    selection_cli:\n        CommandLine|contains:\n{flags}\n"
                         f"    filter_main:\n        ParentImage|endswith: '\\{word()}.exe'\n"
                         "    condition: all of selection_* and not 1 of filter_*\n")
        elif kind < 0.75:
            detection = (f"    selection:\n        CommandLine|contains|all:\n{flags}\n"
                         "    condition: selection\n")
        elif kind < 0.85:
            nested = images.replace("            ", "              ")
            detection = (f"    selection:\n        - Image|endswith:\n{nested}\n"
                         f"        - OriginalFileName: '{word()}.exe'\n        - Product|contains: '{word(10)}'\n"
                         "    condition: selection\n")
        elif kind < 0.95:
            detection = (f"    selection:\n        CommandLine|re: '{word(4)}[0-9]{{2,4}}\\.{word(3)}'\n"
                         "    condition: selection\n")
        else:
            detection = f"    keywords:\n        - '{word(9)}'\n        - '{word(9)}'\n    condition: keywords\n"
        texts.append((f"synthetic/{i}.yml", f"title: Synthetic {i}\nid: {uuid.UUID(int=rng.getrandbits(128))}\n"
                      "level: medium\nlogsource:\n    category: process_creation\ndetection:\n" + detection))
    return texts


def per_event(match: Callable[[ProcessStarted], object], stream: list[ProcessStarted], rounds: int = 3) -> float:
    """Best-of-rounds seconds per event."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for event in stream:
            match(event)
        best = min(best, time.perf_counter() - started)
    return best / len(stream)


def naive(rules: list[CompiledRule]) -> Callable[[ProcessStarted], object]:
    """Every rule's predicate, no prefilter: what a plain loop over all rules costs."""
    def match(event: ProcessStarted) -> list[str]:
        record = make_record(process_fields(event))
        return [r.key for r in rules if r.predicate(record)]

    return match


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args(argv)
    bench_started = time.perf_counter()

    stream = events(args.events)
    baseline, errors = RuleSet.from_texts([("trivial.yml", "title: Trivial\nlogsource:\n    category: "
                                            "process_creation\ndetection:\n    sel:\n        Image|endswith: "
                                            "'\\nothing-runs-this.exe'\n    condition: sel\n")])
    assert not errors, errors
    pack = builtin_rules()
    big_pairs = [*synthetic_rules(args.rules - len(pack)), *builtin_texts()]
    load_started = time.perf_counter()
    big, errors = RuleSet.from_texts(big_pairs)
    load_seconds = time.perf_counter() - load_started
    assert not errors, errors[:3]
    compiled_big = [rule for name, text in big_pairs for rule in load_text(name, text)[0]]

    t_base = per_event(baseline.match_process, stream)
    t_pack = per_event(pack.match_process, stream)
    t_big = per_event(big.match_process, stream)
    t_naive = per_event(naive(compiled_big), stream, rounds=1)
    findings = sum(len(pack.match_process(e)) for e in stream)

    def rate(seconds: float, rules: int) -> float:
        return rules / seconds

    summary = {
        "events": len(stream),
        "builtin_rules": len(pack),
        "builtin_findings": findings,
        "baseline_us_per_event": round(t_base * 1e6, 2),
        "builtin_us_per_event": round(t_pack * 1e6, 2),
        "builtin_rule_evals_per_s": round(rate(t_pack, len(pack))),
        "baseline_rule_evals_per_s": round(rate(t_base, 1)),
        "builtin_vs_baseline_cost_ratio": round(t_pack / t_base, 2),
        "builtin_vs_baseline_rule_eval_rate_ratio": round(rate(t_pack, len(pack)) / rate(t_base, 1), 2),
        "big_rules": len(big),
        "big_load_s": round(load_seconds, 2),
        "big_us_per_event": round(t_big * 1e6, 2),
        "big_vs_baseline_cost_ratio": round(t_big / t_base, 2),
        "naive_big_us_per_event": round(t_naive * 1e6, 2),
        "prefilter_speedup": round(t_naive / t_big, 2),
        "target_big_ms_per_event": 1.0,
        "big_meets_target": t_big * 1e3 <= 1.0,
        "wall_s": round(time.perf_counter() - bench_started, 1),
    }
    print(f"events: {len(stream)} ProcessStarted ({findings} built-in findings)")
    print(f"baseline (1 trivial rule):        {t_base * 1e6:8.1f} us/event")
    print(f"built-in pack ({len(pack)} rules):        {t_pack * 1e6:8.1f} us/event  "
          f"{rate(t_pack, len(pack)):,.0f} rule evals/s  cost x{t_pack / t_base:.2f} of baseline, "
          f"rule-eval rate x{rate(t_pack, len(pack)) / rate(t_base, 1):.1f} of baseline")
    print(f"{len(big)} rules with prefilter:     {t_big * 1e6:8.1f} us/event  cost x{t_big / t_base:.2f} "
          f"of baseline (target <= 1000 us)")
    print(f"{len(compiled_big)} rules, naive loop:       {t_naive * 1e6:8.1f} us/event  "
          f"prefilter is x{t_naive / t_big:.1f} faster")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
