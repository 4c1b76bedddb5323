"""The app's strings in simplified Chinese and English, switchable at runtime.

Why a table of pairs rather than gettext catalogues: two languages, a few hundred
strings, and a runtime switch that must re-label every visible screen at once. A key
maps to ``(English, 中文)``; field labels come from the entity schema itself
(``FieldSpec.label`` / ``label_zh``) so a new field is labelled in both languages where
it is declared.

The default language follows the system locale (``LANG``/``LC_ALL``/``locale``): any
``zh*`` locale gives Chinese, everything else English.
"""

from __future__ import annotations

import locale
import os
from collections.abc import Callable
from typing import Literal

from mobile_app.strings_day import CHOICES as DAY_CHOICES
from mobile_app.strings_day import STRINGS as DAY_STRINGS
from sync_protocol import CRM_SCHEMA

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")

_S: dict[str, tuple[str, str]] = {
    # app and navigation
    "app.title": ("Fieldsync", "Fieldsync 外勤"),
    "nav.today": ("Today", "今日"),
    "nav.customers": ("Customers", "客户"),
    "nav.pipeline": ("Pipeline", "商机"),
    "nav.tickets": ("Tickets", "工单"),
    "nav.settings": ("Settings", "设置"),
    "action.back": ("Back", "返回"),
    "action.save": ("Save", "保存"),
    "action.cancel": ("Cancel", "取消"),
    "action.new": ("New", "新建"),
    "action.edit": ("Edit", "编辑"),
    "action.retry": ("Fix & retry", "修改并重试"),
    "action.discard": ("Discard", "丢弃"),
    "action.clear": ("Clear", "清除"),
    # first run / unlock / initial sync
    "login.title": ("Sign in to Fieldsync", "登录 Fieldsync"),
    "login.server": ("Server URL", "服务器地址"),
    "login.username": ("Username", "用户名"),
    "login.password": ("Password", "密码"),
    "login.totp": ("One-time code", "动态验证码"),
    "login.totp_needed": (
        "This account needs a one-time code from your authenticator app.",
        "该账号需要验证器中的动态验证码。",
    ),
    "login.passphrase": ("Choose a passphrase", "设置本地密码"),
    "login.passphrase2": ("Repeat passphrase", "再次输入本地密码"),
    "login.passphrase_hint": (
        "The passphrase encrypts this phone's copy of your data.",
        "本地密码用于加密手机上的数据。",
    ),
    "login.submit": ("Sign in", "登录"),
    "login.err.missing": ("Fill in {what}.", "请填写{what}。"),
    "login.err.mismatch": ("The passphrases differ.", "两次输入的密码不一致。"),
    "login.err.short": (
        "The passphrase needs at least {n} characters.",
        "本地密码至少需要 {n} 个字符。",
    ),
    "login.err.url": (
        "The server URL must start with http:// or https://",
        "服务器地址须以 http:// 或 https:// 开头",
    ),
    "login.err.credentials": ("Wrong username or password.", "用户名或密码错误。"),
    "login.err.totp": ("The one-time code is wrong.", "动态验证码错误。"),
    "login.err.network": ("Cannot reach the server: {reason}", "无法连接服务器：{reason}"),
    "login.err.revoked": ("This device was revoked by an administrator.", "此设备已被管理员停用。"),
    "unlock.title": ("Unlock", "解锁"),
    "unlock.hello": ("Welcome back, {user}", "欢迎回来，{user}"),
    "unlock.passphrase": ("Passphrase", "本地密码"),
    "unlock.submit": ("Unlock", "解锁"),
    "unlock.err.wrong": ("Wrong passphrase.", "本地密码错误。"),
    "unlock.err.tampered": (
        "The local data is damaged or was tampered with.",
        "本地数据已损坏或被篡改。",
    ),
    "initial.title": ("Downloading your customers…", "正在下载客户数据…"),
    "initial.progress": ("{done} of about {total} records", "已下载 {done} / 约 {total} 条"),
    "initial.done": ("Ready: {n} records on this phone", "完成：本机共 {n} 条记录"),
    "initial.failed": (
        "Sync stopped: {reason}. You can work offline and sync later.",
        "同步中断：{reason}。可以先离线工作，稍后再同步。",
    ),
    "initial.continue": ("Continue", "继续"),
    # sync bar
    "sync.online": ("Online", "在线"),
    "sync.offline": ("Offline", "离线"),
    "sync.pending": ("{n} unsent", "{n} 条未上传"),
    "sync.all_sent": ("All sent", "已全部上传"),
    "sync.photos": ("{n} photo(s) unsent", "{n} 张照片未上传"),
    "sync.pending_photos": ("{n} unsent + {p} photo(s)", "{n} 条未上传 + {p} 张照片"),
    "sync.last": ("Synced {when}", "{when}同步"),
    "sync.never": ("Never synced", "尚未同步"),
    "sync.badge": ("{n} to check", "{n} 项待处理"),
    "sync.clock": ("Phone clock is off", "手机时间不准"),
    "time.just_now": ("just now", "刚刚"),
    "time.minutes": ("{n} min ago", "{n} 分钟前"),
    "time.hours": ("{n} h ago", "{n} 小时前"),
    "time.days": ("{n} d ago", "{n} 天前"),
    # customers
    "customers.title": ("Customers", "客户"),
    "customers.search": ("Search name, phone, company, pinyin", "搜索姓名、电话、公司、拼音"),
    "customers.count": ("{shown} of {total}", "{shown} / {total}"),
    "customers.empty": ("No customers match.", "没有符合条件的客户。"),
    "customers.all": ("All", "全部"),
    "customers.filter.status": ("Status", "状态"),
    "customers.filter.tier": ("Tier", "等级"),
    "customers.filter.owner": ("Owner", "负责人"),
    "customers.follow_up": ("Follow up {date}", "跟进 {date}"),
    "customers.no_follow_up": ("No follow-up", "未安排跟进"),
    "customers.overdue": ("overdue", "已逾期"),
    "customers.new": ("New customer", "新建客户"),
    "customers.edit": ("Edit customer", "编辑客户"),
    "customers.saved": ("Saved. It will sync when online.", "已保存，联网后自动同步。"),
    "customers.fix": ("Please correct the marked fields.", "请修改标出的字段。"),
    "customers.not_found": ("This customer is no longer on this phone.", "本机已无此客户。"),
    "detail.contacts": ("Contacts", "联系人"),
    "detail.opportunities": ("Opportunities", "商机"),
    "detail.timeline": ("Activity", "跟进记录"),
    "detail.contracts": ("Contracts", "合同"),
    "detail.tickets": ("Tickets", "工单"),
    "detail.none": ("None yet", "暂无"),
    "detail.log_visit": ("Log a visit", "记录拜访"),
    "detail.new_ticket": ("New ticket", "新建工单"),
    "detail.pending": ("not yet synced", "未同步"),
    # visit
    "visit.title": ("Log a visit", "记录拜访"),
    "visit.customer": ("Customer: {name}", "客户：{name}"),
    "visit.check_in": ("Check-in time", "签到时间"),
    "visit.now": ("Now", "现在"),
    "visit.locate": ("Get location", "获取位置"),
    "visit.location": ("Location (lat, lon)", "位置（纬度, 经度）"),
    "visit.gps_unavailable": (
        "No GPS here: type the location or leave it empty.",
        "无法定位：可手动填写位置或留空。",
    ),
    "visit.gps_ok": ("Location from GPS (±{acc} m)", "GPS 定位（±{acc} 米）"),
    "visit.outcome": ("Outcome", "结果"),
    "visit.notes": ("Notes", "记录"),
    "visit.next": ("Next follow-up (YYYY-MM-DD)", "下次跟进（年-月-日）"),
    "visit.saved": ("Visit logged; follow-up task created.", "拜访已记录，并已创建跟进任务。"),
    "visit.task_title": ("Follow up with {name}", "跟进 {name}"),
    "visit.subject": ("Visit to {name}", "拜访 {name}"),
    "visit.err.time": ("Use YYYY-MM-DD HH:MM", "格式：年-月-日 时:分"),
    "visit.err.location": ("Type two numbers: latitude, longitude", "请输入两个数字：纬度, 经度"),
    "visit.open": ("Visit", "拜访详情"),
    "visit.photos_saved": (
        "Visit logged with {n} photo(s); they upload in the background.",
        "拜访已记录，{n} 张照片将在后台上传。",
    ),
    # photos (attachments of a visit)
    "photos.title": ("Photos", "照片"),
    "photos.take": ("Take photo", "拍照"),
    "photos.choose": ("Choose file…", "选择文件…"),
    "photos.path_hint": ("…or type a file path", "…或输入文件路径"),
    "photos.attach": ("Attach", "添加"),
    "photos.remove": ("Remove", "移除"),
    "photos.none": ("No photos yet", "暂无照片"),
    "photos.count": ("{n} photo(s)", "{n} 张照片"),
    "photos.staged": ("{size} · attaches when you save", "{size} · 保存拜访时添加"),
    "photos.chooser_title": ("Choose a photo", "选择照片"),
    "photos.status.queued": ("Queued · waits for a connection", "排队中 · 等待网络"),
    "photos.status.uploading": ("Uploading {pct}%", "上传中 {pct}%"),
    "photos.status.complete": ("Uploaded", "已上传"),
    "photos.status.failed": ("Failed: {reason}", "上传失败：{reason}"),
    "photos.status.remote": ("On the server", "在服务器上"),
    "photos.retry": ("Retry", "重试"),
    "photos.retried": ("Queued again.", "已重新排队。"),
    "photos.err.too_large": (
        "This photo is {size}; photos are limited to {limit}. Choose a smaller one.",
        "这张照片有 {size}，超过了 {limit} 的上限，请选择更小的照片。",
    ),
    "photos.err.server_too_large": (
        "the server accepts photos up to {limit}",
        "服务器只接受 {limit} 以内的照片",
    ),
    "photos.err.forbidden": (
        "you may not add photos to this record",
        "无权为该记录添加照片",
    ),
    "photos.err.missing": ("No file at {path}", "找不到文件：{path}"),
    "photos.err.not_image": (
        "{name} is not a photo (JPEG, PNG, HEIC, WebP)",
        "{name} 不是照片（支持 JPEG、PNG、HEIC、WebP）",
    ),
    "photos.err.camera": ("The camera did not return a photo.", "相机未返回照片。"),
    "photos.err.other": ("Could not attach the photo: {reason}", "无法添加照片：{reason}"),
    # pipeline
    "pipeline.title": ("Pipeline", "销售漏斗"),
    "pipeline.total": ("{n} deals · {amount}", "{n} 个 · {amount}"),
    "pipeline.move": ("Move to…", "移动到…"),
    "pipeline.moved": ("Moved to {stage}", "已移动到 {stage}"),
    "pipeline.edit": ("Edit deal", "编辑商机"),
    "pipeline.amount": ("Amount", "金额"),
    "pipeline.probability": ("Probability (0–100 %)", "赢单概率（0–100%）"),
    "pipeline.close_date": ("Expected close (YYYY-MM-DD)", "预计成交日期（年-月-日）"),
    "pipeline.err.number": ("Type a number", "请输入数字"),
    "pipeline.err.percent": ("Type 0 to 100", "请输入 0 到 100"),
    "pipeline.no_stages": (
        "No pipeline stages yet: sync with the server first.",
        "还没有销售阶段：请先与服务器同步。",
    ),
    # today
    "today.title": ("Today", "今日"),
    "today.overdue": ("Overdue follow-ups", "逾期跟进"),
    "today.due": ("Follow-ups due today", "今日跟进"),
    "today.tasks": ("Open tasks", "待办任务"),
    "today.contracts": ("Contracts expiring within {days} days", "{days} 天内到期的合同"),
    "today.nothing": ("Nothing here.", "暂无。"),
    "today.expires": ("expires {date}", "{date} 到期"),
    "today.due_at": ("due {date}", "{date} 截止"),
    "today.days_late": ("{n} d late", "逾期 {n} 天"),
    # tickets
    "tickets.title": ("Tickets", "工单"),
    "tickets.new": ("New ticket", "新建工单"),
    "tickets.customer": ("Customer", "客户"),
    "tickets.subject": ("Title", "标题"),
    "tickets.description": ("Description", "描述"),
    "tickets.priority": ("Priority", "优先级"),
    "tickets.status": ("Status", "状态"),
    "tickets.comment": ("Add a comment", "添加评论"),
    "tickets.send": ("Send", "发送"),
    "tickets.rating": ("Customer satisfaction", "客户满意度"),
    "tickets.rated": ("Rated {n}/5", "评分 {n}/5"),
    "tickets.comments": ("Comments", "评论"),
    "tickets.empty": ("No tickets.", "暂无工单。"),
    "tickets.pick_customer": ("Choose a customer", "请选择客户"),
    # conflicts and rejected writes
    "conflicts.title": ("Conflicts", "冲突"),
    "conflicts.empty": ("No conflicts. Everything merged.", "没有冲突，全部已合并。"),
    "conflicts.mine": ("Mine", "我的"),
    "conflicts.theirs": ("Theirs", "对方"),
    "conflicts.original": ("Original", "原值"),
    "conflicts.keep_mine": ("Keep mine", "用我的"),
    "conflicts.keep_theirs": ("Keep theirs", "用对方的"),
    "conflicts.use_typed": ("Use typed value", "用输入的值"),
    "conflicts.type_value": ("…or type a new value", "…或输入新值"),
    "conflicts.resolved": ("Resolved; it will sync when online.", "已解决，联网后同步。"),
    "conflicts.empty_value": ("(empty)", "（空）"),
    "rejected.title": ("Rejected writes", "被拒绝的修改"),
    "rejected.empty": ("The server accepted every write.", "服务器已接受全部修改。"),
    "rejected.reason": ("Server: {reason}", "服务器：{reason}"),
    "rejected.retried": ("Sent again with your fix.", "已按修改重新提交。"),
    "rejected.discarded": ("Discarded.", "已丢弃。"),
    "inbox.open": ("Conflicts & rejected", "冲突与被拒绝"),
    # settings
    "settings.title": ("Settings", "设置"),
    "settings.language": ("Language", "语言"),
    "settings.sync_now": ("Sync now", "立即同步"),
    "settings.synced": (
        "Synced: {sent} sent, {received} received",
        "同步完成：上传 {sent} 条，下载 {received} 条",
    ),
    "settings.sync_failed": ("Sync failed: {reason}", "同步失败：{reason}"),
    "settings.change_passphrase": ("Change passphrase", "修改本地密码"),
    "settings.old_passphrase": ("Current passphrase", "当前密码"),
    "settings.new_passphrase": ("New passphrase", "新密码"),
    "settings.passphrase_changed": ("Passphrase changed.", "本地密码已修改。"),
    "settings.logout": ("Log out", "退出登录"),
    "settings.logout_pending": (
        "Not signed out: that would erase {what}.",
        "未退出：这会清除{what}。",
    ),
    "settings.signed_in_as": (
        "Signed in as {user} ({role}) on {server}",
        "当前用户 {user}（{role}），服务器 {server}",
    ),
    "settings.conflicts": ("Conflict inbox ({n})", "冲突（{n}）"),
    "settings.rejected": ("Rejected writes ({n})", "被拒绝的修改（{n}）"),
    # validation messages, by FieldError code
    "err.required": ("{label} is required", "请填写{label}"),
    "err.too_long": ("{label} is too long", "{label}太长"),
    "err.invalid_email": ("{label}: not an e-mail address", "{label}格式不正确"),
    "err.invalid_phone": ("{label}: not a phone number", "{label}不是有效的电话号码"),
    "err.invalid_date": ("{label}: use YYYY-MM-DD", "{label}格式：年-月-日"),
    "err.invalid_datetime": ("{label}: use YYYY-MM-DD HH:MM", "{label}格式：年-月-日 时:分"),
    "err.invalid_choice": ("{label}: choose one of the options", "{label}：请从选项中选择"),
    "err.too_small": ("{label} is too small", "{label}太小"),
    "err.too_large": ("{label} is too large", "{label}太大"),
    "err.type": ("{label} has the wrong kind of value", "{label}的值类型不正确"),
    "err.not_a_number": ("{label}: type a number", "{label}：请输入数字"),
    "err.other": ("{label}: {message}", "{label}：{message}"),
    # roles
    "role.rep": ("sales rep", "销售代表"),
    "role.manager": ("manager", "经理"),
    "role.admin": ("administrator", "管理员"),
}

#: Enum values shown to people, keyed ``"<field>.<value>"`` (the schema holds the codes).
_CHOICES: dict[str, tuple[str, str]] = {
    "status.potential": ("Potential", "潜在客户"),
    "status.intent": ("Intent", "意向客户"),
    "status.closed": ("Closed", "成交客户"),
    "tier.high": ("High", "高"),
    "tier.mid": ("Mid", "中"),
    "tier.low": ("Low", "低"),
    "kind.person": ("Person", "个人"),
    "kind.company": ("Company", "企业"),
    "gender.male": ("Male", "男"),
    "gender.female": ("Female", "女"),
    "gender.other": ("Other", "其他"),
    "source.referral": ("Referral", "转介绍"),
    "source.web": ("Website", "官网"),
    "source.event": ("Event", "展会活动"),
    "source.cold_call": ("Cold call", "电话陌拜"),
    "source.advertisement": ("Advertisement", "广告"),
    "source.partner": ("Partner", "合作伙伴"),
    "source.campaign": ("Campaign", "营销活动"),
    "source.other": ("Other", "其他"),
    "outcome.positive": ("Positive", "积极"),
    "outcome.neutral": ("Neutral", "一般"),
    "outcome.negative": ("Negative", "消极"),
    "outcome.no_answer": ("Nobody there", "未见到人"),
    "outcome.follow_up": ("Needs follow-up", "需再跟进"),
    "ticket_status.open": ("Open", "待处理"),
    "ticket_status.in_progress": ("In progress", "处理中"),
    "ticket_status.resolved": ("Resolved", "已解决"),
    "ticket_status.closed": ("Closed", "已关闭"),
    "priority.low": ("Low", "低"),
    "priority.normal": ("Normal", "普通"),
    "priority.high": ("High", "高"),
    "priority.urgent": ("Urgent", "紧急"),
    "contract_status.draft": ("Draft", "草稿"),
    "contract_status.signed": ("Signed", "已签订"),
    "contract_status.active": ("Active", "执行中"),
    "contract_status.expired": ("Expired", "已到期"),
    "contract_status.terminated": ("Terminated", "已终止"),
    "opp_status.open": ("Open", "进行中"),
    "opp_status.won": ("Won", "赢单"),
    "opp_status.lost": ("Lost", "输单"),
    "activity.call": ("Call", "电话"),
    "activity.email": ("E-mail", "邮件"),
    "activity.visit": ("Visit", "拜访"),
    "activity.meeting": ("Meeting", "会议"),
    "activity.note": ("Note", "备注"),
    "task_status.open": ("Open", "待办"),
    "task_status.done": ("Done", "已完成"),
    "task_status.cancelled": ("Cancelled", "已取消"),
}

_S.update(DAY_STRINGS)
_CHOICES.update(DAY_CHOICES)

_INDEX = {"en": 0, "zh": 1}


def system_language(environ: dict[str, str] | None = None) -> Language:
    """``zh`` when the system locale is any Chinese locale, else ``en``."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    if environ is None:
        try:
            code = locale.getlocale()[0] or ""
        except ValueError:  # pragma: no cover - broken locale settings
            code = ""
        if code.lower().startswith("zh"):
            return "zh"
    return "en"


class Translator:
    """The current language and lookups in it; listeners hear about a switch."""

    def __init__(self, language: Language | None = None) -> None:
        self._language: Language = language or system_language()
        self._listeners: list[Callable[[Language], None]] = []

    @property
    def language(self) -> Language:
        return self._language

    def set_language(self, language: Language) -> None:
        if language not in _INDEX:
            raise ValueError(f"unsupported language {language!r}")
        if language == self._language:
            return
        self._language = language
        for listener in list(self._listeners):
            listener(language)

    def subscribe(self, listener: Callable[[Language], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def __call__(self, key: str, **values: object) -> str:
        """The string for ``key`` in the current language, formatted with ``values``."""
        pair = _S.get(key)
        if pair is None:
            return key
        text = pair[_INDEX[self._language]]
        return text.format(**values) if values else text

    def choice(self, group: str, value: str | None) -> str:
        """A human label for an enum code, e.g. ``choice("status", "intent")`` → 意向客户."""
        if value is None or value == "":
            return ""
        pair = _CHOICES.get(f"{group}.{value}")
        return pair[_INDEX[self._language]] if pair else value

    def field_label(self, collection: str, field: str) -> str:
        """The schema's label for a field, in the current language."""
        entity = CRM_SCHEMA.get(collection)
        spec = entity.fields.get(field) if entity else None
        if spec is None:
            return field
        return (spec.label_zh if self._language == "zh" else spec.label) or field

    def entity_label(self, collection: str) -> str:
        entity = CRM_SCHEMA.get(collection)
        if entity is None:
            return collection
        return (entity.label_zh if self._language == "zh" else entity.label) or collection


def all_keys() -> list[str]:
    """Every string key (tests check both languages fill every one)."""
    return sorted(_S)


def all_choice_keys() -> list[str]:
    return sorted(_CHOICES)


def raw_pair(key: str) -> tuple[str, str]:
    return _S.get(key) or _CHOICES[key]
