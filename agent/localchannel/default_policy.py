"""The data-handling policy staff acknowledge when HQ has not sent its own text.

Served by the agent's ``policy_text`` handler (the hash is what ``acknowledge_policy`` quotes), so
the tray never invents a policy of its own. Both languages say the same four things: do not share
or lend accounts, do not install tools, do not export or photograph customer data, and report
anyone who asks you to.
"""

from __future__ import annotations

from agent.localchannel.ops import PolicyTextResult, policy_text_hash

DEFAULT_POLICY_ZH = "\n".join((
    "网点员工数据安全守则",
    "",
    "本电脑受终端卫士保护。您在本电脑上登录业务系统，即表示您同意遵守以下规定。",
    "",
    "一、账号只属于您本人",
    (
        "1. 不得出借、出租、转让或与他人共用您的业务系统账号和密码，包括同事、亲友和任何自称“总部”"
        "或“技术支持”的人。"
    ),
    "2. 离开工位时请锁定电脑或退出登录。",
    "3. 发现账号在您不知情时被使用，请立即报告网点负责人和总部安全团队。",
    "",
    "二、不得安装工具",
    (
        "4. 不得在本电脑上安装或运行任何未经总部批准的软件，包括批量导出、自动点击、抓取（爬虫）、"
        "远程控制、抓包和代理翻墙工具。"
    ),
    "5. 不得允许他人通过远程控制软件操作本电脑。",
    "",
    "三、客户数据不得离开业务系统",
    "6. 寄件人和收件人的姓名、电话、地址、身份证号和运单信息只能用于本人当前处理的业务。",
    "7. 不得导出、复制、下载、打印、截屏或用手机拍摄客户数据，不得通过聊天软件、网盘或U盘传出。",
    "8. 不得查询与本网点业务无关的运单。",
    "",
    "四、报告",
    (
        "9. 任何人要求您出借账号、安装工具或提供客户数据，无论给予多少报酬，都请立即报告网点负责人"
        "和总部安全团队。报告人将受到保护。"
    ),
    "",
    "五、监测与后果",
    (
        "10. 终端卫士会记录本电脑上的可疑程序、远程会话和批量导出行为（不记录客户数据内容），并报告"
        "总部。"
    ),
    "11. 违反本守则将被追究责任；出售或泄露公民个人信息属于违法犯罪行为。",
    "",
    "请将本守则阅读到底，然后输入您的工号确认。",
    "",
))

DEFAULT_POLICY_EN = "\n".join((
    "Outlet staff data-handling policy",
    "",
    (
        "This PC is protected by Terminal Guard. By signing in to the business system on this PC "
        "you agree to the following."
    ),
    "",
    "I. Your account is yours alone",
    (
        "1. Do not lend, rent, hand over or share your business-system account or password with "
        'anyone: colleagues, friends, family, or anyone claiming to be "HQ" or "technical support".'
    ),
    "2. Lock the PC or sign out whenever you leave it.",
    (
        "3. If your account is used without your knowledge, report it to your outlet manager and "
        "the HQ security team at once."
    ),
    "",
    "II. Do not install tools",
    (
        "4. Do not install or run any software that HQ has not approved on this PC, including "
        "bulk-export, auto-click, scraping (crawler), remote-control, packet-capture and proxy "
        "tools."
    ),
    "5. Do not let anyone operate this PC through remote-control software.",
    "",
    "III. Customer data stays in the business system",
    (
        "6. Names, phone numbers, addresses, ID numbers and waybill details of senders and "
        "recipients may only be used for the parcel you are handling."
    ),
    (
        "7. Do not export, copy, download, print, screenshot or photograph customer data, and do "
        "not send it out through chat apps, cloud drives or USB sticks."
    ),
    "8. Do not look up waybills that have nothing to do with your outlet's work.",
    "",
    "IV. Report",
    (
        "9. If anyone asks you to lend your account, install a tool or hand over customer data — "
        "whatever they offer to pay — report it at once to your outlet manager and the HQ security "
        "team. People who report are protected."
    ),
    "",
    "V. Monitoring and consequences",
    (
        "10. Terminal Guard records suspicious programs, remote sessions and bulk exports on this "
        "PC (never the content of customer data) and reports them to HQ."
    ),
    (
        "11. Breaking this policy has consequences; selling or leaking personal information is a "
        "crime."
    ),
    "",
    "Please read this policy to the end, then type your staff ID to confirm.",
    "",
))


def default_policy_text() -> PolicyTextResult:
    """The ``policy_text`` result for the built-in policy (version None: not issued by HQ)."""
    return {
        "version": None,
        "hash": policy_text_hash(DEFAULT_POLICY_ZH, DEFAULT_POLICY_EN),
        "text_zh": DEFAULT_POLICY_ZH,
        "text_en": DEFAULT_POLICY_EN,
    }
