<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AlertsDialog</name>
    <message>
        <source>Terminal Guard alerts</source>
        <translation>终端卫士告警</translation>
    </message>
    <message>
        <source>&amp;Waiting for your answer</source>
        <translation>待您处理(&amp;W)</translation>
    </message>
    <message>
        <source>&amp;Past alerts</source>
        <translation>历史告警(&amp;P)</translation>
    </message>
    <message>
        <source>No alerts are waiting for your answer.</source>
        <translation>没有待您处理的告警。</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>What was found</source>
        <translation>发现的情况</translation>
    </message>
    <message>
        <source>Alert:</source>
        <translation>告警：</translation>
    </message>
    <message>
        <source>Severity:</source>
        <translation>严重程度：</translation>
    </message>
    <message>
        <source>Kind:</source>
        <translation>类型：</translation>
    </message>
    <message>
        <source>Program:</source>
        <translation>程序：</translation>
    </message>
    <message>
        <source>Records involved:</source>
        <translation>涉及记录数：</translation>
    </message>
    <message>
        <source>When:</source>
        <translation>时间：</translation>
    </message>
    <message>
        <source>Status:</source>
        <translation>状态：</translation>
    </message>
    <message>
        <source>Your answer</source>
        <translation>您的答复</translation>
    </message>
    <message>
        <source>A&amp;cknowledge: I understand and it will not happen again</source>
        <translation>确认(&amp;C)：我已知悉，不会再发生</translation>
    </message>
    <message>
        <source>&amp;Explain: this was part of my work</source>
        <translation>说明(&amp;E)：这是我的正常工作</translation>
    </message>
    <message>
        <source>Justification</source>
        <translation>情况说明</translation>
    </message>
    <message>
        <source>&amp;Send answer</source>
        <translation>提交答复(&amp;S)</translation>
    </message>
    <message>
        <source>A written justification is required for high and critical alerts.</source>
        <translation>高危和严重告警必须填写书面说明。</translation>
    </message>
    <message>
        <source>Write down why this happened.</source>
        <translation>请写明发生的原因。</translation>
    </message>
    <message>
        <source>A justification is optional for this alert.</source>
        <translation>此告警可不填写说明。</translation>
    </message>
    <message>
        <source>Sending your answer…</source>
        <translation>正在提交答复…</translation>
    </message>
    <message>
        <source>Answer saved; it will reach HQ when the connection is back.</source>
        <translation>答复已保存，网络恢复后将发送到总部。</translation>
    </message>
    <message>
        <source>Answer sent to HQ.</source>
        <translation>答复已发送到总部。</translation>
    </message>
</context>
<context>
    <name>DiagnosticsWindow</name>
    <message>
        <source>Terminal Guard diagnostics</source>
        <translation>终端卫士诊断信息</translation>
    </message>
    <message>
        <source>Status:</source>
        <translation>状态：</translation>
    </message>
    <message>
        <source>Agent version:</source>
        <translation>客户端版本：</translation>
    </message>
    <message>
        <source>Device ID:</source>
        <translation>设备编号：</translation>
    </message>
    <message>
        <source>Outlet:</source>
        <translation>网点：</translation>
    </message>
    <message>
        <source>HQ address:</source>
        <translation>总部地址：</translation>
    </message>
    <message>
        <source>HQ reachable:</source>
        <translation>总部可连接：</translation>
    </message>
    <message>
        <source>Last heartbeat:</source>
        <translation>最近心跳：</translation>
    </message>
    <message>
        <source>Events waiting to be sent:</source>
        <translation>待发送事件：</translation>
    </message>
    <message>
        <source>Policy version:</source>
        <translation>策略版本：</translation>
    </message>
    <message>
        <source>Signed-in staff:</source>
        <translation>已登录员工：</translation>
    </message>
    <message>
        <source>Service address:</source>
        <translation>服务地址：</translation>
    </message>
    <message>
        <source>&amp;Copy diagnostics</source>
        <translation>复制诊断信息(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Refresh</source>
        <translation>刷新(&amp;R)</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Yes</source>
        <translation>是</translation>
    </message>
    <message>
        <source>No</source>
        <translation>否</translation>
    </message>
    <message>
        <source>Diagnostics copied to the clipboard.</source>
        <translation>诊断信息已复制到剪贴板。</translation>
    </message>
</context>
<context>
    <name>PolicyDialog</name>
    <message>
        <source>Data-handling policy</source>
        <translation>数据安全守则</translation>
    </message>
    <message>
        <source>Read the whole policy, then type your staff ID and confirm.</source>
        <translation>请完整阅读守则，然后输入您的工号并确认。</translation>
    </message>
    <message>
        <source>Scroll to the end of the policy to continue.</source>
        <translation>请将守则滚动到末尾后继续。</translation>
    </message>
    <message>
        <source>Type your staff ID</source>
        <translation>输入您的工号</translation>
    </message>
    <message>
        <source>Your staff &amp;ID:</source>
        <translation>您的工号(&amp;I)：</translation>
    </message>
    <message>
        <source>I &amp;acknowledge</source>
        <translation>我已阅读并确认(&amp;A)</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Sign in first to acknowledge the policy.</source>
        <translation>请先登录，再确认守则。</translation>
    </message>
    <message>
        <source>Loading the policy…</source>
        <translation>正在加载守则…</translation>
    </message>
    <message>
        <source>Saving your acknowledgement…</source>
        <translation>正在保存您的确认…</translation>
    </message>
</context>
<context>
    <name>SignInDialog</name>
    <message>
        <source>Sign in to Terminal Guard</source>
        <translation>登录终端卫士</translation>
    </message>
    <message>
        <source>Sign in with your own staff ID. Never use or lend another person&apos;s account.</source>
        <translation>请使用您本人的工号登录。不得使用或出借他人账号。</translation>
    </message>
    <message>
        <source>Staff ID</source>
        <translation>工号</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>密码</translation>
    </message>
    <message>
        <source>&amp;Staff ID:</source>
        <translation>工号(&amp;S)：</translation>
    </message>
    <message>
        <source>&amp;Password:</source>
        <translation>密码(&amp;P)：</translation>
    </message>
    <message>
        <source>&amp;Sign in</source>
        <translation>登录(&amp;S)</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Signing in…</source>
        <translation>正在登录…</translation>
    </message>
</context>
<context>
    <name>StatusWindow</name>
    <message>
        <source>Terminal Guard</source>
        <translation>终端卫士</translation>
    </message>
    <message>
        <source>&amp;Menu</source>
        <translation>菜单(&amp;M)</translation>
    </message>
</context>
<context>
    <name>Texts</name>
    <message>
        <source>Terminal Guard: this PC is protected</source>
        <translation>终端卫士：本电脑已受保护</translation>
    </message>
    <message>
        <source>Terminal Guard: needs your attention</source>
        <translation>终端卫士：需要您处理</translation>
    </message>
    <message>
        <source>Terminal Guard: HQ unreachable, still protecting</source>
        <translation>终端卫士：无法连接总部，保护仍在运行</translation>
    </message>
    <message>
        <source>Terminal Guard service is not running</source>
        <translation>终端卫士服务未运行</translation>
    </message>
    <message>
        <source>Terminal Guard: not signed in</source>
        <translation>终端卫士：未登录</translation>
    </message>
    <message>
        <source>Connecting to the Terminal Guard service…</source>
        <translation>正在连接终端卫士服务…</translation>
    </message>
    <message>
        <source>Signed in as %1</source>
        <translation>已登录：%1</translation>
    </message>
    <message>
        <source>Sign in here before using the business system</source>
        <translation>使用业务系统前请在此登录</translation>
    </message>
    <message>
        <source>Events are kept on this PC and sent when HQ is back</source>
        <translation>事件暂存在本电脑，总部恢复后自动发送</translation>
    </message>
    <message>
        <source>This PC is not protected. Please tell your IT contact.</source>
        <translation>本电脑当前未受保护，请联系IT人员。</translation>
    </message>
    <message>
        <source>The service answered with an error (%1)</source>
        <translation>服务返回错误（%1）</translation>
    </message>
    <message>
        <source>A program posing as the Terminal Guard service answered. Tell IT at once.</source>
        <translation>有程序冒充终端卫士服务，请立即报告IT人员。</translation>
    </message>
    <message>
        <source>This PC is not registered with HQ</source>
        <translation>本电脑尚未在总部注册</translation>
    </message>
    <message>
        <source>HQ has revoked this PC; IT must register it again</source>
        <translation>总部已吊销本电脑，需由IT重新注册</translation>
    </message>
    <message>
        <source>Please read and acknowledge the data policy</source>
        <translation>请阅读并确认数据安全守则</translation>
    </message>
    <message>
        <source>Alerts are waiting for your answer</source>
        <translation>有告警等待您处理</translation>
    </message>
    <message>
        <source>Alerts waiting for your answer: %1</source>
        <translation>待您处理的告警：%1 条</translation>
    </message>
    <message>
        <source>Events have not reached HQ for a long time</source>
        <translation>事件长时间未能发送到总部</translation>
    </message>
    <message>
        <source>This PC&apos;s clock is wrong; tell IT</source>
        <translation>本电脑时间不准确，请联系IT人员</translation>
    </message>
    <message>
        <source>Part of the protection has stopped; tell IT</source>
        <translation>部分保护功能已停止，请联系IT人员</translation>
    </message>
    <message>
        <source>Needs attention: %1</source>
        <translation>需要处理：%1</translation>
    </message>
    <message>
        <source>Sign in…</source>
        <translation>登录…</translation>
    </message>
    <message>
        <source>Sign out %1</source>
        <translation>退出登录 %1</translation>
    </message>
    <message>
        <source>Data-handling policy…</source>
        <translation>数据安全守则…</translation>
    </message>
    <message>
        <source>Acknowledge the data-handling policy…</source>
        <translation>确认数据安全守则…</translation>
    </message>
    <message>
        <source>Alerts…</source>
        <translation>告警…</translation>
    </message>
    <message>
        <source>Alerts (%1 waiting)…</source>
        <translation>告警（%1 条待处理）…</translation>
    </message>
    <message>
        <source>Diagnostics…</source>
        <translation>诊断信息…</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>Quit tray</source>
        <translation>退出托盘程序</translation>
    </message>
    <message>
        <source>Enter your staff ID.</source>
        <translation>请输入工号。</translation>
    </message>
    <message>
        <source>A staff ID has letters, digits, &apos;.&apos;, &apos;_&apos; or &apos;-&apos; only (at most 64).</source>
        <translation>工号只能包含字母、数字、“.”、“_”或“-”（最多64个字符）。</translation>
    </message>
    <message>
        <source>Enter your password.</source>
        <translation>请输入密码。</translation>
    </message>
    <message>
        <source>Choose acknowledge or explain.</source>
        <translation>请选择“确认”或“说明”。</translation>
    </message>
    <message>
        <source>Write a justification of at least %1 characters.</source>
        <translation>请填写至少 %1 个字的说明。</translation>
    </message>
    <message>
        <source>The justification is longer than %1 characters.</source>
        <translation>说明超过了 %1 个字。</translation>
    </message>
    <message>
        <source>Low</source>
        <translation>低</translation>
    </message>
    <message>
        <source>Medium</source>
        <translation>中</translation>
    </message>
    <message>
        <source>High</source>
        <translation>高危</translation>
    </message>
    <message>
        <source>Critical</source>
        <translation>严重</translation>
    </message>
    <message>
        <source>Automation tool</source>
        <translation>自动化工具</translation>
    </message>
    <message>
        <source>Scripting</source>
        <translation>脚本</translation>
    </message>
    <message>
        <source>Traffic interception</source>
        <translation>流量拦截</translation>
    </message>
    <message>
        <source>Remote access</source>
        <translation>远程访问</translation>
    </message>
    <message>
        <source>Tunnel or proxy</source>
        <translation>隧道或代理</translation>
    </message>
    <message>
        <source>Data export</source>
        <translation>数据导出</translation>
    </message>
    <message>
        <source>Account sharing</source>
        <translation>账号共用</translation>
    </message>
    <message>
        <source>Waiting for your answer</source>
        <translation>等待您处理</translation>
    </message>
    <message>
        <source>Acknowledged</source>
        <translation>已确认</translation>
    </message>
    <message>
        <source>Explained</source>
        <translation>已说明</translation>
    </message>
    <message>
        <source>For your information</source>
        <translation>仅供知悉</translation>
    </message>
    <message>
        <source>Terminal Guard: signed out</source>
        <translation>终端卫士：已登出</translation>
    </message>
    <message>
        <source>%1 was signed out because this PC was not used for a while. Sign in again to continue.</source>
        <translation>由于本电脑一段时间无人操作，工号 %1 已自动登出。请重新登录后继续。</translation>
    </message>
    <message>
        <source>%1 was signed out because the screen was locked. Sign in again to continue.</source>
        <translation>由于屏幕已锁定，工号 %1 已自动登出。请重新登录后继续。</translation>
    </message>
    <message>
        <source>%1 was signed out because the outlet&apos;s business hours have ended.</source>
        <translation>网点营业时间已结束，工号 %1 已自动登出。</translation>
    </message>
    <message>
        <source>%1 was signed out because the computer user who signed in has logged off.</source>
        <translation>登录时使用的电脑用户已注销，工号 %1 已自动登出。</translation>
    </message>
    <message>
        <source>%1 was signed out because the Terminal Guard service stopped. Sign in again once it runs.</source>
        <translation>终端卫士服务已停止，工号 %1 已登出。服务恢复运行后请重新登录。</translation>
    </message>
    <message>
        <source>HQ ended the session of %1: it expired or is no longer valid. Please sign in again.</source>
        <translation>总部已结束工号 %1 的会话：会话已过期或已失效。请重新登录。</translation>
    </message>
    <message>
        <source>HQ ended the session of %1. Sign in again if you still need to work.</source>
        <translation>总部已结束工号 %1 的会话。如需继续工作，请重新登录。</translation>
    </message>
    <message>
        <source>HQ suspended the staff account %1 and ended its session. Ask your outlet manager.</source>
        <translation>总部已暂停工号 %1 并结束了其会话，请联系网点负责人。</translation>
    </message>
    <message>
        <source>HQ disabled the staff account %1 and ended its session. Ask your outlet manager.</source>
        <translation>总部已停用工号 %1 并结束了其会话，请联系网点负责人。</translation>
    </message>
    <message>
        <source>HQ ended the session of %1: this staff ID no longer belongs to this PC&apos;s outlet. Ask your outlet manager.</source>
        <translation>总部已结束工号 %1 的会话：该工号已不属于本电脑所在的网点。请联系网点负责人。</translation>
    </message>
    <message>
        <source>HQ ended the session of %1 because it revoked this PC. Tell IT.</source>
        <translation>总部已吊销本电脑，工号 %1 的会话已结束。请联系IT人员。</translation>
    </message>
    <message>
        <source>%1 was signed out (%2).</source>
        <translation>工号 %1 已登出（%2）。</translation>
    </message>
    <message>
        <source>Signing in to HQ is not available on this PC yet.</source>
        <translation>本电脑暂不支持登录总部。</translation>
    </message>
    <message>
        <source>The service did not accept the request (%1).</source>
        <translation>服务未接受该请求（%1）。</translation>
    </message>
    <message>
        <source>This PC is not registered with HQ yet; tell IT.</source>
        <translation>本电脑尚未在总部注册，请联系IT人员。</translation>
    </message>
    <message>
        <source>HQ has revoked this PC; tell IT.</source>
        <translation>总部已吊销本电脑，请联系IT人员。</translation>
    </message>
    <message>
        <source>HQ cannot be reached right now. Try again in a minute.</source>
        <translation>暂时无法连接总部，请稍后再试。</translation>
    </message>
    <message>
        <source>Staff ID or password is wrong.</source>
        <translation>工号或密码错误。</translation>
    </message>
    <message>
        <source>This staff account is suspended. Ask your outlet manager.</source>
        <translation>该员工账号已被暂停，请联系网点负责人。</translation>
    </message>
    <message>
        <source>Too many wrong passwords: this staff account is locked for a while. Try again later, or ask your outlet manager to have it unlocked.</source>
        <translation>密码错误次数过多，该工号已被暂时锁定。请稍后再试，或联系网点负责人申请解锁。</translation>
    </message>
    <message>
        <source>This staff account has been disabled by HQ. Ask your outlet manager.</source>
        <translation>该工号已被总部停用，请联系网点负责人。</translation>
    </message>
    <message>
        <source>This staff ID does not belong to this PC&apos;s outlet. Sign in on a PC at your own outlet, or ask your outlet manager.</source>
        <translation>该工号不属于本电脑所在的网点。请在您所属网点的电脑上登录，或联系网点负责人。</translation>
    </message>
    <message>
        <source>This staff ID does not belong to this PC&apos;s outlet (%1). Sign in on a PC at your own outlet, or ask your outlet manager.</source>
        <translation>该工号不属于本电脑所在的网点（%1）。请在您所属网点的电脑上登录，或联系网点负责人。</translation>
    </message>
    <message>
        <source>Someone else is still signed in on this PC. Only one person can be signed in at a time: they must sign out first (tray menu, Sign out).</source>
        <translation>本电脑已有其他员工登录。每台电脑同一时间只能登录一人，请先由其退出登录（托盘菜单中的“退出登录”）。</translation>
    </message>
    <message>
        <source>%1 is still signed in on this PC. Only one person can be signed in at a time: %1 must sign out first (tray menu, Sign out).</source>
        <translation>员工 %1 仍在本电脑上登录。每台电脑同一时间只能登录一人，请先由 %1 退出登录（托盘菜单中的“退出登录”）。</translation>
    </message>
    <message>
        <source>Please read and acknowledge the data-handling policy first.</source>
        <translation>请先阅读并确认数据安全守则。</translation>
    </message>
    <message>
        <source>Your session has expired because this PC could not reach HQ in time. Please sign in again.</source>
        <translation>本电脑未能及时连接总部，您的登录已过期，请重新登录。</translation>
    </message>
    <message>
        <source>HQ refused the sign-in (%1). Try again; if it keeps happening, tell IT.</source>
        <translation>总部拒绝了本次登录（%1）。请重试；如多次出现，请联系IT人员。</translation>
    </message>
    <message>
        <source>Nobody is signed in on this PC.</source>
        <translation>本电脑当前没有员工登录。</translation>
    </message>
    <message>
        <source>The staff ID you typed is not the signed-in staff.</source>
        <translation>您输入的工号与已登录的员工不一致。</translation>
    </message>
    <message>
        <source>The policy changed while you read it; please read it again.</source>
        <translation>您阅读期间守则已更新，请重新阅读。</translation>
    </message>
    <message>
        <source>This alert no longer exists.</source>
        <translation>该告警已不存在。</translation>
    </message>
    <message>
        <source>A written justification is required.</source>
        <translation>必须填写书面说明。</translation>
    </message>
    <message>
        <source>This user account may not use Terminal Guard on this PC.</source>
        <translation>此用户账户无权在本电脑上使用终端卫士。</translation>
    </message>
    <message>
        <source>The service is busy. Try again in a moment.</source>
        <translation>服务繁忙，请稍后再试。</translation>
    </message>
    <message>
        <source>The service took too long to answer. Try again in a moment.</source>
        <translation>服务响应超时，请稍后再试。</translation>
    </message>
    <message>
        <source>The service did not understand the tray&apos;s request (%1). Tell IT; Terminal Guard may need updating.</source>
        <translation>服务无法识别托盘程序的请求（%1）。请联系IT人员，可能需要更新终端卫士。</translation>
    </message>
    <message>
        <source>The Terminal Guard service and tray versions do not match (%1). Tell IT to update Terminal Guard.</source>
        <translation>终端卫士服务与托盘程序版本不一致（%1），请联系IT人员更新终端卫士。</translation>
    </message>
    <message>
        <source>The request was too large for the service (%1). Tell IT.</source>
        <translation>请求内容过大，服务无法处理（%1）。请联系IT人员。</translation>
    </message>
    <message>
        <source>The service&apos;s answer could not be read (%1). Tell IT.</source>
        <translation>无法读取服务的应答（%1），请联系IT人员。</translation>
    </message>
    <message>
        <source>The service failed to do this; try again or tell IT.</source>
        <translation>服务处理失败，请重试或联系IT人员。</translation>
    </message>
    <message>
        <source>The Terminal Guard service is not running.</source>
        <translation>终端卫士服务未运行。</translation>
    </message>
    <message>
        <source>The service refused the request (%1).</source>
        <translation>服务拒绝了该请求（%1）。</translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message>
        <source>Terminal Guard is already running for this user.</source>
        <translation>终端卫士已在当前用户下运行。</translation>
    </message>
</context>
<context>
    <name>TrayController</name>
    <message>
        <source>Terminal Guard alert</source>
        <translation>终端卫士告警</translation>
    </message>
    <message>
        <source>Terminal Guard</source>
        <translation>终端卫士</translation>
    </message>
    <message>
        <source>Acknowledgement saved; it will reach HQ when the connection is back.</source>
        <translation>确认已保存，网络恢复后将发送到总部。</translation>
    </message>
    <message>
        <source>Thank you. Your acknowledgement was sent to HQ.</source>
        <translation>谢谢，您的确认已发送到总部。</translation>
    </message>
</context>
</TS>
