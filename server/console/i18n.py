"""The console's two languages: simplified Chinese and English.

The language is the ``fs_lang`` cookie when the manager chose one (the switch in the
header), else the best match of the browser's ``Accept-Language``, else Chinese (the
product is Chinese-first). Field labels come from the entity schema (``label`` /
``label_zh``), so a field added to the schema is labelled in both languages at once;
everything else is in :data:`MESSAGES`. A missing key shows the key itself (a test
checks that every key the templates use exists in both languages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from sync_protocol import CRM_SCHEMA

LANGS = ("zh", "en")
LANG_COOKIE = "fs_lang"
DEFAULT_LANG = "zh"

#: key -> (English, 简体中文)
MESSAGES: dict[str, tuple[str, str]] = {
    # chrome
    "app.name": ("Fieldsync console", "Fieldsync 管理台"),
    "skip": ("Skip to content", "跳到正文"),
    "nav.dashboard": ("Dashboard", "仪表盘"),
    "nav.customers": ("Customers", "客户"),
    "nav.leads": ("Leads", "线索"),
    "nav.pipeline": ("Pipeline", "销售管道"),
    "nav.reassign": ("Reassignment", "客户转移"),
    "nav.conflicts": ("Conflicts", "冲突处理"),
    "nav.devices": ("Devices", "设备"),
    "nav.users": ("Users and teams", "用户与团队"),
    "nav.audit": ("Audit log", "审计日志"),
    "nav.reports": ("Reports", "报表"),
    "nav.import": ("CSV import", "CSV 导入"),
    "nav.api": ("API (/docs)", "API 文档"),
    "nav.menu": ("Menu", "菜单"),
    "lang.switch": ("中文", "English"),
    "lang.label": ("Language", "语言"),
    "signed_in_as": ("Signed in as {name}", "当前用户：{name}"),
    "sign_out": ("Sign out", "退出登录"),
    # sign-in
    "login.title": ("Sign in", "登录"),
    "login.username": ("Username", "用户名"),
    "login.password": ("Password", "密码"),
    "login.submit": ("Sign in", "登录"),
    "login.totp": ("One-time code", "动态验证码"),
    "login.totp_help": (
        "Enter the 6-digit code from your authenticator app.",
        "请输入身份验证器 App 中的 6 位数字。",
    ),
    "login.verify": ("Verify", "验证"),
    "login.bad": ("Wrong username or password.", "用户名或密码错误。"),
    "login.bad_totp": ("Wrong one-time code.", "动态验证码错误。"),
    "login.rate_limited": (
        "Too many attempts. Try again in {seconds} seconds.",
        "尝试次数过多，请 {seconds} 秒后再试。",
    ),
    "login.not_manager": (
        "The console is for managers and admins. Reps use the phone app.",
        "管理台仅供经理和管理员使用，销售代表请使用手机 App。",
    ),
    "login.expired": ("Your session ended. Please sign in again.", "会话已结束，请重新登录。"),
    "login.restart": ("Start again", "重新开始"),
    # common
    "search": ("Search", "搜索"),
    "filter": ("Filter", "筛选"),
    "clear": ("Clear", "清除"),
    "all": ("All", "全部"),
    "save": ("Save", "保存"),
    "cancel": ("Cancel", "取消"),
    "create": ("Create", "新建"),
    "edit": ("Edit", "编辑"),
    "back": ("Back", "返回"),
    "confirm": ("Confirm", "确认"),
    "none": ("None", "无"),
    "yes": ("Yes", "是"),
    "no": ("No", "否"),
    "owner": ("Owner", "负责人"),
    "total": ("Total", "合计"),
    "count": ("Count", "数量"),
    "amount": ("Amount", "金额"),
    "name": ("Name", "名称"),
    "status": ("Status", "状态"),
    "actions": ("Actions", "操作"),
    "page.prev": ("Previous", "上一页"),
    "page.next": ("Next", "下一页"),
    "page.of": ("{start}–{end} of {total}", "第 {start}–{end} 条，共 {total} 条"),
    "empty": ("Nothing here yet.", "暂无数据。"),
    "saved": ("Saved.", "已保存。"),
    "download_csv": ("Download CSV", "下载 CSV"),
    "error.title": ("Something went wrong", "出错了"),
    "error.not_found": ("Not found (or not in your team).", "未找到（或不属于您的团队）。"),
    "error.forbidden": ("You may not do this.", "您无权执行此操作。"),
    "error.csrf": (
        "This form is missing its security token. Reload the page and try again.",
        "表单缺少安全令牌，请刷新页面后重试。",
    ),
    "error.fix_fields": ("Please correct the fields marked below.", "请修正下方标出的字段。"),
    # dashboard
    "dash.title": ("Today's team", "团队概览"),
    "dash.funnel": ("Pipeline funnel (open deals)", "销售漏斗（进行中商机）"),
    "dash.won_target": ("Won vs target, {period}", "{period} 成交与目标"),
    "dash.won": ("Won", "已成交"),
    "dash.target": ("Target", "目标"),
    "dash.week": ("Visits and calls this week", "本周拜访与电话"),
    "dash.visits": ("Visits", "拜访"),
    "dash.calls": ("Calls", "电话"),
    "dash.overdue": ("Overdue follow-ups", "逾期跟进"),
    "dash.overdue_tasks": ("Overdue tasks", "逾期任务"),
    "dash.overdue_customers": ("Customers past follow-up date", "超过跟进日期的客户"),
    "dash.tickets": ("Open tickets and satisfaction", "未结工单与满意度"),
    "dash.open_tickets": ("Open tickets", "未结工单"),
    "dash.satisfaction": ("Average satisfaction", "平均满意度"),
    "dash.attention": ("Waiting for you", "待处理"),
    "dash.conflicts": ("Conflicts to decide", "待裁决冲突"),
    "dash.rejected": ("Rejected writes on phones", "手机上被拒绝的写入"),
    "dash.out_of_sync": ("Devices out of sync", "未同步设备"),
    "dash.pipeline_value": ("Open pipeline value", "进行中商机金额"),
    "dash.deals": ("Deals", "商机数"),
    "dash.chart_table": ("Figures as a table", "以表格查看数据"),
    # customers
    "cust.title": ("Customers", "客户"),
    "cust.search_help": (
        "Name, phone, company; pinyin (zhangsan) or initials (zs) work too.",
        "可按姓名、电话、公司搜索，也支持全拼（zhangsan）和首字母（zs）。",
    ),
    "cust.tag": ("Tag", "标签"),
    "cust.new": ("New customer", "新建客户"),
    "cust.export": ("Export CSV", "导出 CSV"),
    "cust.contacts": ("Contacts", "联系人"),
    "cust.deals": ("Deals", "商机"),
    "cust.timeline": ("Visits and follow-ups", "拜访与跟进记录"),
    "cust.tasks": ("Tasks", "任务"),
    "cust.contracts": ("Contracts", "合同"),
    "cust.tickets": ("Tickets", "工单"),
    "cust.check_in": ("Check-in", "签到"),
    "cust.accuracy": ("±{m} m", "精度 ±{m} 米"),
    "cust.photos": ("Photos", "照片"),
    "cust.photo_pending": ("Photo still uploading", "照片上传中"),
    "cust.details": ("Details", "详细信息"),
    "cust.edit": ("Edit customer", "编辑客户"),
    "cust.version": ("Version {v}", "版本 {v}"),
    "cust.changed": (
        "Someone changed this customer meanwhile; the form shows the current values.",
        "该客户已被他人修改，表单已显示最新内容。",
    ),
    "cust.reassign": ("Reassign", "转移"),
    # leads
    "leads.title": ("Leads", "线索"),
    "leads.new": ("New lead", "新建线索"),
    "leads.assign": ("Assign to", "分配给"),
    "leads.assign_do": ("Assign", "分配"),
    "leads.convert": ("Convert", "转化"),
    "leads.converted": ("Converted to {name}", "已转化为 {name}"),
    "leads.assigned": ("{n} leads assigned.", "已分配 {n} 条线索。"),
    "leads.assign_selected": ("Assign the ticked leads to", "将勾选的线索分配给"),
    "leads.round_robin": (
        "The team's reps in turn (fewest open leads first)",
        "团队销售轮流分配（未结线索最少者优先）",
    ),
    "leads.select": ("Select", "选择"),
    "leads.select_one": ("Select {name}", "选择 {name}"),
    "leads.reassign_to": ("Reassign to", "转给"),
    "leads.reassign_help": (
        "The new rep's phones receive the lead at their next sync; the old rep's drop it.",
        "新负责人的手机在下次同步时收到此线索，原负责人的手机将其移除。",
    ),
    "leads.keep_myself": ("Myself (assign later)", "我自己（稍后分配）"),
    "leads.assign_help": (
        "The rep's phones receive the lead at their next sync.",
        "该销售的手机在下次同步时收到此线索。",
    ),
    "leads.convert_title": ("Convert to a customer", "转化为客户"),
    "leads.convert_help": (
        "Creates a customer from the lead (its company, or its name), and links the lead "
        "to it — all at once. The customer belongs to the lead's owner.",
        "由线索创建客户（公司名或姓名），并将线索关联到该客户——一次完成。客户归线索负责人所有。",
    ),
    "leads.with_contact": ("Also add the lead's person as a contact", "同时把线索人员添加为联系人"),
    "leads.with_deal": ("Also open a deal", "同时创建商机"),
    "leads.deal": ("The deal", "商机"),
    "leads.need_stage": ("Choose the deal's stage.", "请选择商机阶段。"),
    "leads.bad_amount": ("The amount is not a number.", "金额不是有效数字。"),
    "leads.duplicate": (
        "The new customer looks like one that already exists. Create it anyway, or convert "
        "the lead into the existing customer:",
        "新客户与已有客户相似。仍然创建，或将线索转化到已有客户：",
    ),
    "leads.hidden_match": ("a customer of another rep", "其他销售的客户"),
    "leads.matched_phone": ("same phone", "电话相同"),
    "leads.matched_email": ("same e-mail", "邮箱相同"),
    "leads.matched_name_company": ("same name and company", "名称和公司相同"),
    "leads.create_anyway": ("Create a new customer anyway", "仍然创建新客户"),
    "leads.into_existing": ("Convert into {name}", "转化到 {name}"),
    "leads.converted_title": ("Converted", "已转化"),
    "leads.converted_flash": ("The lead is converted.", "线索已转化。"),
    "leads.not_visible": ("not in your team", "不在您的团队"),
    # pipeline
    "pipe.title": ("Pipeline", "销售管道"),
    "pipe.move": ("Move to", "移到"),
    "pipe.move_do": ("Move", "移动"),
    "pipe.close": ("Expected close", "预计成交"),
    "pipe.probability": ("Probability", "成功率"),
    "pipe.more": ("and {n} more (largest shown first)", "另有 {n} 个（按金额从大到小显示）"),
    # reassignment
    "re.title": ("Reassignment", "客户转移"),
    "re.one": ("One customer", "单个客户"),
    "re.book": ("A rep's whole book", "整个客户组合"),
    "re.customer": ("Customer", "客户"),
    "re.from": ("From rep", "原负责人"),
    "re.to": ("To rep", "新负责人"),
    "re.preview": ("Preview", "预览"),
    "re.preview_title": ("What moves", "将转移的内容"),
    "re.preview_text": (
        "{customers} customers and {records} records hanging off them move from {from_name} to {to_name}. {from_name}'s phones drop them at their next sync; {to_name}'s receive them.",
        "{customers} 个客户及其 {records} 条关联记录将从 {from_name} 转给 {to_name}。{from_name} 的手机下次同步时将移除这些数据，{to_name} 的手机将收到它们。",
    ),
    "re.do": ("Move them", "确认转移"),
    "re.done": (
        "Moved {customers} customers ({records} records) to {to_name}.",
        "已将 {customers} 个客户（{records} 条记录）转给 {to_name}。",
    ),
    "re.same": ("Choose two different reps.", "请选择两位不同的代表。"),
    "re.pick_customer": ("Find the customer", "查找客户"),
    # conflicts
    "cf.title": ("Conflicts inbox", "冲突收件箱"),
    "cf.record": ("Record", "记录"),
    "cf.field": ("Field", "字段"),
    "cf.base": ("Before both edits", "修改前"),
    "cf.local": ("The rep's value", "代表提交的值"),
    "cf.remote": ("The other value", "另一方的值"),
    "cf.value": ("Type a value", "输入新值"),
    "cf.keep": ("Keep", "保留"),
    "cf.resolve": ("Resolve", "裁决"),
    "cf.by": ("From {user} on {device}", "来自 {user}（设备 {device}）"),
    "cf.resolved": (
        "Resolved. Every device gets the decision at its next sync.",
        "已裁决，各设备下次同步时获得结果。",
    ),
    "cf.none": ("No conflicts wait for a decision.", "没有待裁决的冲突。"),
    "cf.bad_value": ("The value is not valid JSON or text.", "值无效。"),
    # devices
    "dev.title": ("Devices", "设备"),
    "dev.user": ("User", "用户"),
    "dev.name": ("Device", "设备"),
    "dev.last_sync": ("Last sync", "最近同步"),
    "dev.pending": ("Pending writes", "待上传"),
    "dev.app": ("App version", "App 版本"),
    "dev.clock": ("Clock offset", "时钟偏差"),
    "dev.revoked": ("Revoked", "已吊销"),
    "dev.wiped": ("Revoked and wiped", "已吊销并擦除"),
    "dev.active": ("Active", "正常"),
    "dev.never": ("Never", "从未"),
    "dev.revoke": ("Revoke", "吊销"),
    "dev.wipe": ("Wipe", "远程擦除"),
    "dev.revoke_title": ("Revoke {device}?", "吊销设备 {device}？"),
    "dev.revoke_text": (
        "The device is signed out at its next request and cannot sync again. The data on it stays: anything not yet synced remains readable and exportable on the phone. Use this when a phone is replaced.",
        "该设备下次请求时将被登出且无法再同步。设备上的数据会保留：尚未同步的内容仍可在手机上查看和导出。适用于更换手机。",
    ),
    "dev.wipe_title": ("Wipe {device}?", "远程擦除设备 {device}？"),
    "dev.wipe_text": (
        "The device is signed out and erases its Fieldsync data at its next request, including writes not yet synced. Use this for a lost or stolen phone.",
        "该设备将被登出，并在下次请求时擦除其 Fieldsync 数据，包括尚未同步的内容。适用于丢失或被盗的手机。",
    ),
    "dev.done_revoke": ("{device} is revoked.", "设备 {device} 已吊销。"),
    "dev.done_wipe": ("{device} is revoked and will wipe.", "设备 {device} 已吊销并将擦除。"),
    "dev.browser": ("(this browser)", "（当前浏览器）"),
    "dev.behind": ("{n} changes behind", "落后 {n} 条变更"),
    "dev.diagnosis": ("Diagnosis", "诊断"),
    "dev.verdict.healthy": ("Healthy", "正常"),
    "dev.verdict.attention": ("Needs attention", "需要关注"),
    "dev.verdict.broken": ("Not syncing", "无法同步"),
    "dev.action": ("What to do", "处理建议"),
    "dev.checked": (
        "Checked {when} (the diagnosis text is in English)",
        "检查于 {when}（诊断说明为英文）",
    ),
    "dev.lag": ("Behind by", "落后"),
    "dev.offset": ("Clock offset", "时钟偏差"),
    "dev.open_conflicts": ("Open conflicts", "未解决冲突"),
    "dev.dead_letters": ("{n} rejected", "{n} 条被拒绝"),
    # users
    "users.title": ("Users and teams", "用户与团队"),
    "users.username": ("Username", "用户名"),
    "users.display": ("Display name", "显示名称"),
    "users.role": ("Role", "角色"),
    "users.team": ("Team", "团队"),
    "users.totp": ("Two-step sign-in", "两步验证"),
    "users.active": ("Active", "启用"),
    "users.inactive": ("Deactivated", "已停用"),
    "users.new": ("New user", "新建用户"),
    "users.password": ("Initial password (at least 10 characters)", "初始密码（至少 10 位）"),
    "users.deactivate": ("Deactivate", "停用"),
    "users.deactivate_confirm": (
        "Deactivate {name}? They are signed out everywhere; their customers stay theirs until reassigned.",
        "停用 {name}？其所有设备将被登出，客户在转移前仍归其所有。",
    ),
    "users.reset": ("Reset password", "重置密码"),
    "users.reset_done": (
        "New password for {name} (shown once): {password}",
        "{name} 的新密码（仅显示一次）：{password}",
    ),
    "users.enrol": ("Set up two-step sign-in", "设置两步验证"),
    "users.enrol_text": (
        "Scan this code with an authenticator app on {name}'s phone. It is shown once.",
        "请用 {name} 手机上的身份验证器 App 扫描此二维码。仅显示一次。",
    ),
    "users.secret": ("Or type this key", "或手动输入密钥"),
    "users.teams": ("Teams", "团队"),
    "users.members": ("Members", "成员数"),
    "users.manager": ("Manager", "经理"),
    "users.new_team": ("New team", "新建团队"),
    "role.rep": ("Rep", "销售代表"),
    "role.manager": ("Manager", "经理"),
    "role.admin": ("Admin", "管理员"),
    # audit
    "audit.title": ("Audit log", "审计日志"),
    "audit.when": ("When", "时间"),
    "audit.who": ("Who", "操作人"),
    "audit.action": ("Action", "操作"),
    "audit.target": ("Target", "对象"),
    "audit.details": ("Details", "详情"),
    "audit.address": ("Address", "地址"),
    "audit.since": ("From", "开始"),
    "audit.until": ("Until", "结束"),
    "audit.entity": ("Entity", "实体"),
    "audit.action_help": ("Exact, or a prefix ending in *", "完整名称，或以 * 结尾的前缀"),
    # reports
    "rep.title": ("Reports", "报表"),
    "rep.funnel": ("Sales funnel", "销售漏斗"),
    "rep.performance": ("Rep performance", "销售业绩"),
    "rep.leads": ("Lead conversion", "线索转化"),
    "rep.campaigns": ("Campaigns", "营销活动"),
    "rep.tickets": ("Service tickets", "服务工单"),
    "rep.contracts": ("Contracts expiring", "即将到期合同"),
    "rep.overdue": ("Overdue follow-ups", "逾期跟进"),
    "rep.start": ("From", "开始日期"),
    "rep.end": ("To", "结束日期"),
    "rep.days": ("Within days", "天数内"),
    "rep.show": ("Show", "查看"),
    "rep.overdue_hint": (
        "Counts per rep; the CSV lists every overdue task and customer.",
        "按代表统计；CSV 中列出每一条逾期任务和客户。",
    ),
    # import
    "imp.title": ("CSV import", "CSV 导入"),
    "imp.help": (
        "A CSV file whose first row names the columns, in Chinese or English (e.g. 姓名 or name). UTF-8 (with or without BOM), GBK and GB18030 files from Excel are all read.",
        "CSV 文件第一行为列名，中英文均可（如“姓名”或 name）。支持 Excel 导出的 UTF-8（含或不含 BOM）、GBK 与 GB18030 编码。",
    ),
    "imp.entity": ("Import into", "导入到"),
    "imp.file": ("CSV file", "CSV 文件"),
    "imp.check": ("Check only", "仅检查"),
    "imp.run": ("Import", "导入"),
    "imp.atomic": ("All or nothing", "全部成功才导入"),
    "imp.encoding": ("Read as {encoding}.", "按 {encoding} 编码读取。"),
    "imp.summary": (
        "{rows} rows: {imported} imported, {failed} with errors.",
        "共 {rows} 行：导入 {imported} 行，{failed} 行有错误。",
    ),
    "imp.summary_dry": (
        "{rows} rows checked: {ok} would import, {failed} with errors. Nothing was imported.",
        "已检查 {rows} 行：{ok} 行可导入，{failed} 行有错误。未导入任何数据。",
    ),
    "imp.row": ("Row", "行"),
    "imp.field": ("Column", "列"),
    "imp.problem": ("Problem", "问题"),
    "imp.template": ("Download a template", "下载模板"),
    "imp.unreadable": (
        "The file could not be read as text (UTF-8, GBK or GB18030).",
        "无法以文本读取该文件（UTF-8、GBK 或 GB18030）。",
    ),
    "imp.empty": ("The file is empty.", "文件为空。"),
}

#: Field error codes (the API's ``FieldError.code``) in words; others show the API's text.
ERRORS: dict[str, tuple[str, str]] = {
    "required": ("Required.", "必填。"),
    "invalid_email": ("Not an e-mail address.", "不是有效的邮箱地址。"),
    "invalid_phone": ("Not a phone number.", "不是有效的电话号码。"),
    "invalid_choice": ("Not one of the choices.", "不在可选范围内。"),
    "invalid_date": ("Not a date (YYYY-MM-DD).", "不是有效日期（YYYY-MM-DD）。"),
    "invalid_datetime": ("Not a date and time.", "不是有效的日期时间。"),
    "too_long": ("Too long.", "内容过长。"),
    "type": ("Wrong kind of value.", "值的类型不对。"),
    "duplicate": ("A duplicate of another record.", "与已有记录重复。"),
    "possible_duplicate": ("Looks like an existing customer.", "疑似与已有客户重复。"),
    "not_found": ("Refers to something that does not exist.", "引用的记录不存在。"),
    "forbidden": ("Not allowed for you.", "您无权设置。"),
    "unknown_field": ("Unknown column.", "未知的列。"),
}

#: Report columns (the manager API's CSV headers) in words.
COLUMNS: dict[str, tuple[str, str]] = {
    "name": ("Name", "名称"),
    "stage_id": ("Stage", "阶段"),
    "position": ("Order", "顺序"),
    "count": ("Count", "数量"),
    "amount": ("Amount", "金额"),
    "weighted_amount": ("Weighted amount", "加权金额"),
    "rep_id": ("Rep", "代表"),
    "target": ("Target", "目标"),
    "won_amount": ("Won amount", "成交金额"),
    "attainment": ("Attainment", "完成率"),
    "won_count": ("Won", "赢单数"),
    "lost_count": ("Lost", "输单数"),
    "win_rate": ("Win rate", "赢单率"),
    "avg_cycle_days": ("Avg. cycle (days)", "平均周期（天）"),
    "activities": ("Activities", "跟进次数"),
    "source": ("Source", "来源"),
    "total": ("Total", "合计"),
    "leads": ("Leads", "线索数"),
    "converted": ("Converted", "已转化"),
    "conversion_rate": ("Conversion rate", "转化率"),
    "rate": ("Rate", "比率"),
    "campaign_id": ("Campaign", "营销活动"),
    "members": ("Members", "成员"),
    "conversions": ("Conversions", "转化数"),
    "revenue": ("Revenue", "收入"),
    "cost": ("Cost", "成本"),
    "roi": ("ROI", "投资回报率"),
    "status": ("Status", "状态"),
    "avg_resolution_hours": ("Avg. resolution (h)", "平均解决时长（小时）"),
    "avg_satisfaction": ("Avg. satisfaction", "平均满意度"),
    "owner_id": ("Owner", "负责人"),
    "kind": ("Kind", "类型"),
    "record_id": ("Record", "记录"),
    "title": ("Title", "标题"),
    "due": ("Due", "到期"),
    "customer_id": ("Customer", "客户"),
    "contract_id": ("Contract", "合同"),
    "number": ("Number", "编号"),
    "ends_on": ("Ends on", "到期日"),
    "days_left": ("Days left", "剩余天数"),
    "overdue_tasks": ("Overdue tasks", "逾期任务"),
    "overdue_follow_ups": ("Customers past follow-up", "超过跟进日期的客户"),
    "customer_name": ("Customer", "客户"),
}

#: Choice values shown in words (schema enums).
CHOICES: dict[str, tuple[str, str]] = {
    "potential": ("Potential", "潜在客户"),
    "intent": ("Intent", "意向客户"),
    "closed": ("Closed", "成交客户"),
    "high": ("High", "高"),
    "mid": ("Mid", "中"),
    "low": ("Low", "低"),
    "normal": ("Normal", "普通"),
    "urgent": ("Urgent", "紧急"),
    "referral": ("Referral", "转介绍"),
    "web": ("Web", "网站"),
    "event": ("Event", "活动"),
    "cold_call": ("Cold call", "电话陌拜"),
    "advertisement": ("Advertisement", "广告"),
    "partner": ("Partner", "合作伙伴"),
    "campaign": ("Campaign", "营销活动"),
    "other": ("Other", "其他"),
    "person": ("Person", "个人"),
    "company": ("Company", "企业"),
    "male": ("Male", "男"),
    "female": ("Female", "女"),
    "new": ("New", "新线索"),
    "contacted": ("Contacted", "已联系"),
    "qualified": ("Qualified", "已确认"),
    "disqualified": ("Disqualified", "无效"),
    "converted": ("Converted", "已转化"),
    "open": ("Open", "进行中"),
    "won": ("Won", "赢单"),
    "lost": ("Lost", "输单"),
    "call": ("Call", "电话"),
    "email": ("E-mail", "邮件"),
    "visit": ("Visit", "拜访"),
    "meeting": ("Meeting", "会议"),
    "note": ("Note", "备注"),
    "positive": ("Positive", "积极"),
    "neutral": ("Neutral", "一般"),
    "negative": ("Negative", "消极"),
    "no_answer": ("No answer", "未接通"),
    "follow_up": ("Follow up", "需跟进"),
    "done": ("Done", "已完成"),
    "cancelled": ("Cancelled", "已取消"),
    "draft": ("Draft", "草稿"),
    "signed": ("Signed", "已签署"),
    "active": ("Active", "执行中"),
    "expired": ("Expired", "已到期"),
    "terminated": ("Terminated", "已终止"),
    "in_progress": ("In progress", "处理中"),
    "resolved": ("Resolved", "已解决"),
}


def negotiate(request: Request) -> str:
    """The page language: the chosen cookie, else Accept-Language, else Chinese."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGS:
        return chosen
    best, best_q = DEFAULT_LANG, -1.0
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = "zh" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best


@dataclass(frozen=True, slots=True)
class Translator:
    lang: str

    @property
    def index(self) -> int:
        return 1 if self.lang == "zh" else 0

    def __call__(self, key: str, **values: Any) -> str:
        pair = MESSAGES.get(key)
        text = pair[self.index] if pair else key
        return text.format(**values) if values else text

    def choice(self, value: Any) -> str:
        if value is None or value == "":
            return ""
        pair = CHOICES.get(str(value))
        return pair[self.index] if pair else str(value)

    def field(self, collection: str, name: str) -> str:
        entity = CRM_SCHEMA.get(collection)
        spec = entity.fields.get(name) if entity else None
        if spec is None:
            return name
        return (spec.label_zh if self.lang == "zh" else spec.label) or name

    def entity(self, collection: str) -> str:
        entity = CRM_SCHEMA.get(collection)
        if entity is None:
            return collection
        return (entity.label_zh if self.lang == "zh" else entity.label) or collection

    def error(self, code: str, message: str) -> str:
        """A field error in the page's language (the API's own text when unknown)."""
        pair = ERRORS.get(code)
        return pair[self.index] if pair else message

    def column(self, name: str) -> str:
        pair = COLUMNS.get(name)
        return pair[self.index] if pair else name

    def role(self, role: str) -> str:
        return self(f"role.{role}")


def translator(lang: str) -> Translator:
    return Translator(lang if lang in LANGS else DEFAULT_LANG)


Gettext = Callable[..., str]
