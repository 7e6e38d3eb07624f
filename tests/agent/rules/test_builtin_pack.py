"""The shipped rule pack: loads cleanly, every rule fires on a realistic example, benign work stays quiet."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import pytest
import yaml

from agent.findings import CATEGORIES
from agent.rules import RuleSet, builtin_rules, builtin_texts
from agent.sensors.observations import NetworkConnection, ProcessStarted
from tests.agent.rules.builders import conn, info, proc

CHROME = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
EDGE = r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe"
CHROMEDRIVER = r"C:\Users\clerk\.cache\selenium\chromedriver\win64\120.0.6099.109\chromedriver.exe"
PYTHON = r"C:\Users\clerk\AppData\Local\Programs\Python\Python311\python.exe"
NODE = r"C:\Program Files\nodejs\node.exe"
CMD = r"C:\Windows\System32\cmd.exe"
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
Event = ProcessStarted | NetworkConnection

# (rule file stem, event): the named rule must fire. Other rules may fire too.
POSITIVES: list[tuple[str, Event]] = [
    # browser automation
    ("tg_proc_automation_webdriver", proc("/usr/bin/chromedriver", "chromedriver --port=9515")),
    ("tg_proc_automation_webdriver", proc(CHROMEDRIVER, f"{CHROMEDRIVER} --port=53312")),
    ("tg_proc_automation_webdriver", proc("/usr/local/bin/geckodriver", "geckodriver --port 4444")),
    ("tg_proc_automation_webdriver", proc(r"C:\Temp\drv.exe", "drv.exe --port=9515",
                                          original_file_name="msedgedriver.exe")),
    ("tg_proc_automation_driver_child_browser",
     proc(CHROME, f'"{CHROME}" --no-first-run data:,', parent_exe=CHROMEDRIVER)),
    ("tg_proc_automation_remote_debugging",
     proc(CHROME, f'"{CHROME}" --remote-debugging-port=9222 --user-data-dir=C:\\Users\\clerk\\cdp')),
    ("tg_proc_automation_remote_debugging",
     proc("/usr/lib/firefox-esr/firefox-esr",
          "firefox-esr --marionette --remote-debugging-port 41963 -no-remote -profile /tmp/rust_mozprofileQ3x")),
    ("tg_proc_automation_remote_debugging",
     proc("/home/clerk/.cache/ms-playwright/chromium-1091/chrome-linux/chrome",
          "chrome --disable-field-trial-config --headless --remote-debugging-pipe "
          "--user-data-dir=/tmp/playwright_chromiumdev_profile-Ab12Cd about:blank")),
    ("tg_proc_automation_temp_profile",
     proc(CHROME, f'"{CHROME}" --user-data-dir="C:\\Users\\clerk\\AppData\\Local\\Temp\\scoped_dir5128_1427412357" '
                  "data:,")),
    ("tg_proc_automation_temp_profile",
     proc(r"C:\Users\clerk\.cache\puppeteer\chrome\win64-121.0.6167.85\chrome-win64\chrome.exe",
          "chrome.exe --user-data-dir=C:\\Users\\clerk\\AppData\\Local\\Temp\\puppeteer_dev_chrome_profile-kLm9Pq")),
    ("tg_proc_automation_temp_profile",
     proc(r"C:\Users\clerk\AppData\Local\ms-playwright\chromium-1091\chrome-win\chrome.exe", "chrome.exe about:blank")),
    ("tg_proc_automation_browser_flags", proc(CHROME, f'"{CHROME}" --enable-automation --no-first-run')),
    ("tg_proc_automation_browser_flags",
     proc(EDGE, f'"{EDGE}" --disable-blink-features=AutomationControlled https://portal.example/waybills')),
    ("tg_proc_automation_headless_browser",
     proc(CHROME, f'"{CHROME}" --headless=new --disable-gpu --dump-dom https://portal.example/orders')),
    ("tg_proc_automation_headless_browser", proc("/usr/lib/chromium/chromium", "chromium --headless --screenshot")),
    ("tg_proc_automation_headless_browser", proc(r"C:\Program Files\Mozilla Firefox\firefox.exe",
                                                 "firefox.exe -headless -url https://portal.example")),
    ("tg_proc_automation_framework_runtime", proc(NODE, r"node C:\Users\clerk\scripts\puppeteer_export.js")),
    ("tg_proc_automation_framework_runtime",
     proc(r"C:\Users\clerk\AppData\Local\Programs\Python\Python311\Lib\site-packages\playwright\driver\node.exe",
          r'"C:\Users\clerk\AppData\Local\Programs\Python\Python311\Lib\site-packages\playwright\driver\node.exe" '
          r'"C:\Users\clerk\AppData\Local\Programs\Python\Python311\Lib\site-packages\playwright\driver\package'
          r'\cli.js" run-driver')),
    ("tg_proc_automation_framework_runtime", proc("/usr/bin/python3.11", "python3 run_selenium_orders.py")),
    # RPA and macro tools
    ("tg_proc_rpa_autohotkey", proc(r"C:\Program Files\AutoHotkey\v2\AutoHotkey64.exe",
                                    r'"C:\Program Files\AutoHotkey\v2\AutoHotkey64.exe" C:\Users\clerk\copy.ahk')),
    ("tg_proc_rpa_autohotkey", proc(r"C:\Users\clerk\Desktop\helper.exe", "helper.exe", product="AutoHotkey")),
    ("tg_proc_rpa_autoit", proc(r"C:\Program Files (x86)\AutoIt3\AutoIt3.exe", "AutoIt3.exe C:\\x\\fill.au3")),
    ("tg_proc_rpa_anjian", proc(r"C:\Program Files (x86)\按键精灵2014\按键精灵2014.exe", "按键精灵2014.exe")),
    ("tg_proc_rpa_anjian", proc(r"C:\Users\clerk\Desktop\小精灵.exe", "小精灵.exe", product="按键精灵小精灵")),
    ("tg_proc_rpa_uipath", proc(r"C:\Users\clerk\AppData\Local\Programs\UiPath\Studio\UiPath.Executor.exe",
                                "UiPath.Executor.exe")),
    ("tg_proc_rpa_uipath", proc(r"C:\Tools\robot.exe", "robot.exe", company="UiPath")),
    ("tg_proc_rpa_shadowbot", proc(r"C:\Program Files\ShadowBot\ShadowBot.exe", "ShadowBot.exe")),
    ("tg_proc_rpa_power_automate", proc(r"C:\Program Files (x86)\Power Automate Desktop\PAD.Console.Host.exe",
                                        "PAD.Console.Host.exe")),
    ("tg_proc_rpa_laiye", proc(r"C:\Program Files\UiBot Creator\Creator.exe", "Creator.exe")),
    # HTTP scripts and scrapers
    ("tg_proc_scripting_python_http_inline",
     proc(PYTHON, "python.exe -c \"import requests; print(requests.get('https://portal.example/api').text)\"")),
    ("tg_proc_scripting_python_http_inline",
     proc("/usr/bin/python3.11", "python3 -c 'import httpx; httpx.get(\"https://portal.example\")'")),
    ("tg_proc_scripting_crawler_script",
     proc(PYTHON, r"python.exe C:\Users\clerk\scrape_waybills.py --from 2026-01-01")),
    ("tg_proc_scripting_crawler_script", proc(NODE, r"node D:\tools\crawl_orders.js")),
    ("tg_proc_scripting_crawler_script", proc(PYTHON, r"python.exe D:\运单采集.py")),
    ("tg_proc_scripting_scrapy", proc(r"C:\Users\clerk\venv\Scripts\scrapy.exe", "scrapy crawl waybills -o out.csv")),
    ("tg_proc_scripting_scrapy", proc("/usr/bin/python3", "python3 -m scrapy runspider spider.py")),
    ("tg_proc_scripting_website_mirroring", proc("/usr/bin/wget", "wget -r -np https://portal.example/")),
    ("tg_proc_scripting_website_mirroring", proc(r"C:\Tools\wget.exe", "wget.exe --mirror -k https://portal.example")),
    ("tg_proc_scripting_website_mirroring", proc(r"C:\Program Files\WinHTTrack\httrack.exe", "httrack.exe x")),
    ("tg_proc_scripting_http_request_loop",
     proc(CMD, 'cmd.exe /c "for /l %i in (1,1,500) do curl -s -o page%i.json '
               'https://portal.example/api/orders?page=%i"')),
    ("tg_proc_scripting_http_request_loop",
     proc("/bin/bash", "bash -c 'for i in $(seq 1 500); do curl -s \"https://portal.example/?p=$i\"; done'")),
    ("tg_proc_scripting_http_request_loop",
     proc(POWERSHELL, 'powershell -c "1..500 | % { iwr \\"https://portal.example/?p=$_\\" -OutFile $_.json }"')),
    # interception
    ("tg_proc_interception_fiddler", proc(r"C:\Users\clerk\AppData\Local\Programs\Fiddler\Fiddler.exe", "Fiddler")),
    ("tg_proc_interception_fiddler", proc(r"C:\Program Files\Fiddler Everywhere\Fiddler Everywhere.exe", "x")),
    ("tg_proc_interception_charles", proc(r"C:\Program Files\Charles\Charles.exe", "Charles.exe")),
    ("tg_proc_interception_charles",
     proc("/usr/lib/jvm/java-17/bin/java", "java -Xmx1024M -jar /usr/lib/charles-proxy/charles.jar "
                                           "com.xk72.charles.gui.MainWithClassLoader")),
    ("tg_proc_interception_mitmproxy",
     proc("/usr/bin/python3.11", "/home/clerk/.venv/bin/python3 /home/clerk/.venv/bin/mitmdump -p 8080")),
    ("tg_proc_interception_mitmproxy", proc(r"C:\Tools\mitmproxy\mitmweb.exe", "mitmweb.exe")),
    ("tg_proc_interception_burp", proc(r"C:\Program Files\Java\jdk-21\bin\javaw.exe",
                                       r"javaw.exe -jar C:\Tools\burpsuite_community_v2023.10.jar")),
    ("tg_proc_interception_burp", proc(r"C:\Program Files\BurpSuiteCommunity\BurpSuiteCommunity.exe", "x")),
    ("tg_proc_interception_packet_capture", proc(r"C:\Program Files\Wireshark\Wireshark.exe", "Wireshark.exe")),
    ("tg_proc_interception_packet_capture", proc("/usr/bin/dumpcap", "dumpcap -i eth0 -w /tmp/cap.pcapng")),
    ("tg_proc_interception_local_proxy",
     proc(r"C:\Windows\System32\netsh.exe", "netsh winhttp set proxy 127.0.0.1:8888")),
    ("tg_proc_interception_local_proxy",
     proc(r"C:\Windows\System32\reg.exe", r'reg add "HKCU\Software\Microsoft\Windows\CurrentVersion\Internet '
                                          r'Settings" /v ProxyServer /t REG_SZ /d 127.0.0.1:8080 /f')),
    # remote control
    ("tg_proc_remote_todesk", proc(r"C:\Program Files\ToDesk\ToDesk.exe", '"C:\\Program Files\\ToDesk\\ToDesk.exe"')),
    ("tg_proc_remote_todesk", proc("/opt/todesk/bin/ToDesk", "ToDesk")),
    ("tg_proc_remote_sunlogin", proc(r"C:\Program Files\Oray\SunLogin\SunloginClient\SunloginClient.exe", "x")),
    ("tg_proc_remote_sunlogin", proc("/usr/local/sunlogin/bin/sunloginclient", "sunloginclient")),
    ("tg_proc_remote_anydesk", proc("/usr/bin/anydesk", "anydesk")),
    ("tg_proc_remote_anydesk", proc(r"C:\Program Files (x86)\AnyDesk\AnyDesk.exe", "AnyDesk.exe --control")),
    ("tg_proc_remote_teamviewer", proc(r"C:\Program Files\TeamViewer\TeamViewer.exe", "TeamViewer.exe")),
    ("tg_proc_remote_teamviewer", proc("/opt/teamviewer/tv_bin/TeamViewer", "TeamViewer")),
    ("tg_proc_remote_rustdesk", proc(r"C:\Program Files\RustDesk\rustdesk.exe", "rustdesk.exe")),
    ("tg_proc_remote_rustdesk", proc(r"C:\Users\clerk\Downloads\HopToDesk.exe", "HopToDesk.exe")),
    ("tg_proc_remote_vnc_server", proc(r"C:\Program Files\TightVNC\tvnserver.exe", "tvnserver.exe -service")),
    ("tg_proc_remote_vnc_server", proc("/usr/bin/x11vnc", "x11vnc -forever -display :0")),
    ("tg_proc_remote_vnc_viewer", proc(r"C:\Program Files\TightVNC\tvnviewer.exe", "tvnviewer.exe 10.0.0.5")),
    ("tg_proc_remote_rdp_client", proc(r"C:\Windows\System32\mstsc.exe", "mstsc.exe /v:10.0.0.5")),
    ("tg_proc_remote_rdp_client", proc(r"C:\Windows\System32\mstsc.exe", "mstsc.exe -v:fileserver /f")),
    ("tg_proc_remote_rdp_client", proc("/usr/bin/xfreerdp", "xfreerdp /v:10.0.0.5 /u:admin")),
    ("tg_proc_remote_radmin", proc(r"C:\Program Files (x86)\Radmin Viewer 3\Radmin.exe", "Radmin.exe")),
    ("tg_proc_remote_uu_remote", proc(r"C:\Program Files\Netease\UURemote\GameViewer.exe", "GameViewer.exe")),
    ("tg_proc_remote_other_tools", proc(r"C:\Users\clerk\Downloads\GotoHTTP_x64.exe", "GotoHTTP_x64.exe")),
    ("tg_proc_remote_other_tools", proc(r"C:\Program Files (x86)\UltraViewer\UltraViewer_Desktop.exe", "x")),
    # tunnels
    ("tg_proc_tunnel_frp", proc("/usr/local/bin/frpc", "/usr/local/bin/frpc -c /etc/frp/frpc.toml")),
    ("tg_proc_tunnel_frp", proc(r"C:\frp\frpc.exe", r"frpc.exe -c C:\frp\frpc.ini")),
    ("tg_proc_tunnel_ngrok", proc(r"C:\Users\clerk\Downloads\ngrok.exe", "ngrok.exe tcp 3389")),
    ("tg_proc_tunnel_ngrok", proc(r"C:\Users\clerk\AppData\Local\Temp\svc.exe", r'"C:\x\ngrok.exe" http 8080')),
    ("tg_proc_tunnel_nps", proc(r"C:\nps\npc.exe", "npc.exe -server=198.51.100.4:8024 -vkey=x7k2 -type=tcp")),
    ("tg_proc_tunnel_cloudflared", proc(r"C:\Tools\cloudflared.exe", "cloudflared.exe tunnel --url rdp://localhost:3389")),
    ("tg_proc_tunnel_cloudflared", proc("/usr/local/bin/cloudflared", "cloudflared tunnel run outlet")),
    ("tg_proc_tunnel_phddns", proc("/usr/orayapp/phtunnel", "phtunnel -c /usr/orayapp/phtunnel.json")),
    ("tg_proc_tunnel_phddns", proc(r"C:\Program Files (x86)\Oray\PeanutHull\PhTunnel.exe", "PhTunnel.exe")),
    # network connections
    ("tg_net_remote_access_service", conn(r"C:\Users\clerk\Desktop\helper.exe", hostname="relay-8a.net.anydesk.com")),
    ("tg_net_remote_access_service", conn(r"C:\Program Files\ToDesk\ToDesk.exe", hostname="todesk.com")),
    ("tg_net_remote_access_service", conn("/usr/local/sunlogin/bin/sunloginclient", hostname="client.oray.net")),
    ("tg_net_tunnel_service", conn(PYTHON, hostname="abc123.ngrok-free.app")),
    ("tg_net_tunnel_service", conn(r"C:\Tools\cloudflared.exe", hostname="region1.v2.argotunnel.com")),
    ("tg_net_tunnel_service", conn(r"C:\x\phtunnel.exe", hostname="outlet7.vicp.fun")),
    ("tg_net_remote_control_inbound", conn(r"C:\Program Files\TightVNC\tvnserver.exe", direction="inbound",
                                           local_port=5900, remote_ip="198.51.100.77", remote_port=61234)),
    ("tg_net_remote_control_inbound", conn(r"C:\Program Files (x86)\AnyDesk\AnyDesk.exe", direction="inbound")),
]

# Ordinary outlet work: none of these may produce a finding from the built-in pack.
BENIGN: list[Event] = [
    proc(CHROME, f'"{CHROME}" --profile-directory=Default', parent_exe=r"C:\Windows\explorer.exe"),
    proc(CHROME, f'"{CHROME}" --type=renderer --lang=zh-CN --enable-automation --remote-debugging-port=0 '
                 "--user-data-dir=C:\\Temp\\scoped_dir1_2", parent=info(CHROME, "chrome.exe")),  # automated child
    proc(CHROME, f'"{CHROME}" --type=gpu-process --headless', parent=info(CHROME, "chrome.exe")),
    proc(EDGE, f'"{EDGE}" --single-argument https://portal.example/waybills'),
    proc(PYTHON, "python.exe -m pip install requests"),
    proc(PYTHON, "python.exe -m pip install selenium playwright"),
    proc("/usr/bin/python3", "python3 -m http.server 8000"),
    proc(r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE"),
    proc(r"C:\Windows\System32\notepad.exe", r"notepad.exe C:\Users\clerk\Desktop\waybill_export_notes.txt"),
    proc(r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE", r'EXCEL.EXE "C:\Users\clerk\Desktop\日报.xlsx"'),
    proc(r"C:\Users\clerk\AppData\Local\Kingsoft\WPS Office\12.1.0\office6\wps.exe", "wps.exe"),
    proc("/usr/lib/libreoffice/program/soffice.bin", "soffice --headless --convert-to pdf report.docx"),
    proc(r"C:\Program Files\Tencent\WeChat\WeChat.exe", "WeChat.exe"),
    proc(r"C:\Program Files (x86)\DingDing\DingtalkLauncher.exe", "DingtalkLauncher.exe"),
    proc(r"C:\Program Files\Courier\OutletClient\OutletClient.exe", "OutletClient.exe --login"),
    proc(r"C:\Tools\hoptodesk_notes.exe", "hoptodesk_notes.exe"),
    proc(r"C:\Windows\System32\mstsc.exe", "mstsc.exe"),
    proc(r"C:\Tools\cloudflared.exe", "cloudflared.exe proxy-dns --port 5053"),
    proc(r"C:\Windows\System32\curl.exe", "curl.exe -s https://portal.example/health"),
    proc("/usr/bin/wget", "wget -O update.zip https://downloads.example/update.zip"),
    proc(NODE, r"node C:\apps\label-printer\server.js"),
    proc(POWERSHELL, r"powershell.exe -ExecutionPolicy Bypass -File C:\IT\inventory.ps1"),
    proc(r"C:\Program Files\Git\cmd\git.exe", "git.exe fetch origin"),
    proc(CMD, r'cmd.exe /c "for %f in (*.log) do type %f"'),
    conn(CHROME, hostname="www.todesk.com"),
    conn(CHROME, hostname="abc123.ngrok-free.app"),
    conn(r"C:\Windows\System32\svchost.exe", hostname="fe2.update.microsoft.com"),
    conn(r"C:\Program Files\Tencent\WeChat\WeChat.exe", hostname="szshort.weixin.qq.com"),
    conn(PYTHON, hostname="api.example.com"),
    conn(r"C:\Windows\System32\svchost.exe", direction="inbound", local_port=3389),
    conn(r"C:\Program Files (x86)\AnyDesk\AnyDesk.exe", hostname="portal.example", direction="outbound"),
]


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return builtin_rules()


def stem(file: str) -> str:
    return Path(file).stem


def fired(pack: RuleSet, event: Event) -> set[str]:
    findings = pack.match_connection(event) if isinstance(event, NetworkConnection) else pack.match_process(event)
    files = {r.rule: stem(r.file) for r in pack.rules}
    return {files[f.rule] for f in findings}


def test_builtin_pack_loads_with_zero_errors() -> None:
    rules, errors = RuleSet.from_texts(builtin_texts())
    assert errors == []
    assert len(rules) == len(builtin_texts()) >= 40
    assert len(builtin_rules()) == len(rules)


@pytest.mark.parametrize(("rule", "event"), POSITIVES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(POSITIVES)])
def test_builtin_rule_fires_on_its_example(pack: RuleSet, rule: str, event: Event) -> None:
    assert rule in fired(pack, event)


@pytest.mark.parametrize("event", BENIGN, ids=lambda e: (getattr(e, "process", None) and e.process.name) or "x")
def test_benign_outlet_activity_produces_nothing(pack: RuleSet, event: Event) -> None:
    assert fired(pack, event) == set()


def test_every_builtin_rule_has_a_positive_example(pack: RuleSet) -> None:
    assert {stem(r.file) for r in pack.rules} == {rule for rule, _ in POSITIVES}


def test_hoptodesk_is_reported_as_rustdesk_family_not_todesk(pack: RuleSet) -> None:
    assert fired(pack, proc(r"C:\Users\clerk\Downloads\HopToDesk.exe", "HopToDesk.exe")) == {"tg_proc_remote_rustdesk"}


def test_a_webdriver_launched_browser_is_one_finding_per_process(pack: RuleSet) -> None:
    browser = proc(CHROME, f'"{CHROME}" --enable-automation --remote-debugging-port=0 '
                           '--user-data-dir="C:\\Users\\clerk\\AppData\\Local\\Temp\\scoped_dir5128_1" data:,',
                   parent_exe=CHROMEDRIVER)
    renderer = proc(CHROME, f'"{CHROME}" --type=renderer --enable-automation --remote-debugging-port=0',
                    parent=info(CHROME, "chrome.exe"))
    assert {"tg_proc_automation_driver_child_browser", "tg_proc_automation_remote_debugging",
            "tg_proc_automation_temp_profile"} <= fired(pack, browser)
    assert fired(pack, renderer) == set()


def test_a_browser_launcher_script_is_left_to_the_browser_it_execs(pack: RuleSet) -> None:
    # What the sensor sees of Debian's chromium under chromedriver: the same pid, first the shell
    # running /usr/bin/chromium, then (after exec) the browser with the same switches.
    switches = ("--enable-automation --headless=new --remote-debugging-port=0 --test-type=webdriver "
                "--user-data-dir=/tmp/org.chromium.Chromium.scoped_dir.Bo9jQ2 data:,")
    launcher = proc("/usr/bin/dash", f"/bin/sh /usr/bin/chromium {switches}", parent_exe="/usr/bin/chromedriver")
    browser = proc("/usr/lib/chromium/chromium", f"/usr/lib/chromium/chromium --no-default-browser-check {switches}",
                   parent_exe="/usr/bin/chromedriver")
    assert fired(pack, launcher) == set()
    assert fired(pack, browser) == {
        "tg_proc_automation_driver_child_browser", "tg_proc_automation_headless_browser",
        "tg_proc_automation_remote_debugging", "tg_proc_automation_temp_profile", "tg_proc_automation_browser_flags"}


@pytest.mark.parametrize(("name", "text"), builtin_texts(), ids=[n for n, _ in builtin_texts()])
def test_builtin_rule_carries_the_required_metadata(name: str, text: str) -> None:
    rule = yaml.safe_load(text)
    uuid.UUID(rule["id"])
    for key in ("title", "status", "description", "level"):
        assert isinstance(rule.get(key), str) and rule[key].strip(), key
    assert isinstance(rule["date"], datetime.date)
    assert rule["author"] == "Terminal Guard"
    assert rule["references"] and rule["falsepositives"]
    assert rule["logsource"]["category"] in ("process_creation", "network_connection")
    categories = [t.split(".", 2)[2] for t in rule["tags"] if t.startswith("tg.category.")]
    assert len(categories) == 1 and categories[0] in CATEGORIES
    assert name.startswith("builtin/tg_net_" if rule["logsource"]["category"] == "network_connection"
                           else "builtin/tg_proc_")


def test_builtin_pack_is_package_data() -> None:
    import agent.rules

    folder = Path(agent.rules.__file__).parent / "builtin"
    assert sorted(p.name for p in folder.glob("*.yml")) == sorted(Path(n).name for n, _ in builtin_texts())
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'agent = ["rules/builtin/*.yml"]' in pyproject
