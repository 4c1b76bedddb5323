"""UI strings for the rep's whole day (leads, tasks, orders, knowledge, targets, the
sign-out sheet, rejected writes explained), as ``key: (English, 中文)`` pairs.

Kept apart from :mod:`mobile_app.i18n` only to keep modules small; ``i18n`` merges
them into one table, and the same test checks both languages fill every key with the
same placeholders.
"""

from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    # navigation
    "nav.tasks": ("Tasks", "任务"),
    "nav.more": ("More", "更多"),
    "more.title": ("More", "更多"),
    "action.delete": ("Delete", "删除"),
    "action.undo": ("Undo", "撤销"),
    "action.confirm": ("Confirm", "确定"),
    "action.call": ("Call", "打电话"),
    "action.sms": ("SMS", "发短信"),
    "action.mail": ("E-mail", "发邮件"),
    "action.navigate": ("Navigate", "导航"),
    "action.search": ("Search", "搜索"),
    "action.pick": ("Choose…", "选择…"),
    "action.done": ("Done", "完成"),
    "action.today": ("Today", "今天"),
    "action.clear_value": ("Clear", "清空"),
    "form.new": ("New {what}", "新建{what}"),
    "form.edit": ("Edit {what}", "编辑{what}"),
    "picker.customer": ("Choose a customer", "选择客户"),
    "picker.product": ("Choose a product", "选择产品"),
    "picker.search": ("Name, pinyin, phone…", "姓名、拼音、电话…"),
    "picker.none": ("Nothing matches.", "没有匹配项。"),
    "picker.date": ("Choose a date", "选择日期"),
    "picker.time": ("Choose a time", "选择时间"),
    "launch.failed": ("No app on this phone opens {uri}", "本机没有可打开 {uri} 的应用"),
    # duplicates
    "dup.phone": ("same phone as {what} {name}", "与{what}「{name}」电话相同"),
    "dup.email": ("same e-mail as {what} {name}", "与{what}「{name}」邮箱相同"),
    "dup.name": ("same name as {what} {name}", "与{what}「{name}」同名"),
    "dup.more": ("{n} more", "另有 {n} 条"),
    "dup.warning": (
        "Possible duplicate: {matches}. Tap Save again to create it anyway.",
        "可能重复：{matches}。仍要新建请再点一次保存。",
    ),
    # customer detail
    "detail.call_log": ("Log a call", "记录电话"),
    "detail.log_other": ("Log activity", "记录跟进"),
    "detail.new_deal": ("New deal", "新建商机"),
    "detail.new_task": ("New task", "新建任务"),
    "detail.new_order": ("New order", "新建订单"),
    "detail.add_contact": ("Add contact", "添加联系人"),
    "detail.orders": ("Quotes & orders", "报价与订单"),
    "detail.tasks": ("Tasks", "任务"),
    "detail.no_phone": ("No phone number", "无电话号码"),
    # leads
    "leads.title": ("Leads", "线索"),
    "leads.open": ("Open", "跟进中"),
    "leads.empty": ("No leads here.", "暂无线索。"),
    "leads.convert": ("Convert", "转化"),
    "leads.convert_title": ("Convert lead", "转化线索"),
    "leads.customer_name": ("New customer's name", "新客户名称"),
    "leads.contact_name": ("Contact", "联系人"),
    "leads.deal_name": ("Deal name", "商机名称"),
    "leads.make_deal": ("Also create a deal", "同时创建商机"),
    "leads.use_existing": ("Use existing customer {name}", "使用已有客户「{name}」"),
    "leads.new_customer": ("Create a new customer", "新建客户"),
    "leads.converted": (
        "Converted: customer, contact and deal created; they sync together.",
        "已转化：客户、联系人和商机已创建，将一起同步。",
    ),
    "leads.already_converted": ("This lead is already converted.", "该线索已转化。"),
    "leads.qualify": ("Qualify", "确认有效"),
    "leads.contacted": ("Contacted", "已联系"),
    "leads.disqualify": ("Disqualify", "无效"),
    "leads.went_to": ("Converted to {name}", "已转化为「{name}」"),
    # activities
    "activity.log": ("Log a {kind}", "记录{kind}"),
    "activity.saved": ("Saved; it syncs when online.", "已保存，联网后同步。"),
    "activity.date": ("Date", "日期"),
    "activity.time": ("Time", "时间"),
    "activity.type": ("Type", "类型"),
    "visit.place": ("Place (address or description)", "地点（地址或描述）"),
    "visit.at_customer": ("At the customer's address", "在客户地址"),
    "visit.permission_denied": (
        "Location permission refused: type the place instead.",
        "未获定位权限：请手动填写地点。",
    ),
    "visit.waiting_fix": ("Waiting for a GPS fix…", "正在等待 GPS 定位…"),
    "visit.place_note": ("Place: ", "地点："),
    "settings.switch_user": ("Switch user", "切换用户"),
    # deals
    "deals.title": ("Deal", "商机"),
    "deals.close_won": ("Mark this deal as won?", "确定将该商机标记为赢单？"),
    "deals.close_lost": (
        "Mark this deal as lost? Say why:",
        "确定将该商机标记为输单？请填写原因：",
    ),
    "pipeline.err.reason": ("Say why the deal was lost", "请填写输单原因"),
    # tasks
    "tasks.title": ("Tasks", "任务"),
    "tasks.empty": ("No tasks here.", "暂无任务。"),
    "tasks.filter.open": ("Open", "待办"),
    "tasks.filter.done": ("Done", "已完成"),
    "tasks.filter.all": ("All", "全部"),
    "tasks.remind": ("reminder {when}", "提醒 {when}"),
    "tasks.complete": ("Done", "完成"),
    "tasks.reopen": ("Reopen", "重新打开"),
    "reminder.title": ("Reminder: {title}", "提醒：{title}"),
    # undo
    "undo.deleted": ("Deleted {what} {name}", "已删除{what}「{name}」"),
    "undo.task_done": ("Done: {name}", "已完成：{name}"),
    "undo.moved": ("Moved to {stage}", "已移动到 {stage}"),
    # contracts
    "contracts.title": ("Contracts", "合同"),
    "contracts.empty": ("No contracts.", "暂无合同。"),
    "contracts.ends_in": ("ends {date} (in {n} d)", "{date} 到期（剩 {n} 天）"),
    "contracts.ended": ("ended {date}", "已于 {date} 到期"),
    "contracts.remind_from": ("renewal reminder from {date}", "{date} 起提醒续约"),
    "contracts.renew_now": ("time to renew", "该续约了"),
    "contracts.reminder": ("Renewal", "续约提醒"),
    "today.renewals": ("Contracts to renew", "待续约合同"),
    # products and orders
    "products.title": ("Products", "产品目录"),
    "products.empty": ("No products.", "暂无产品。"),
    "orders.title": ("Quotes & orders", "报价与订单"),
    "orders.new": ("New order", "新建订单"),
    "orders.empty": ("No quotes or orders yet.", "暂无报价或订单。"),
    "orders.customer": ("Customer", "客户"),
    "orders.kind": ("Kind", "类型"),
    "orders.lines": ("Lines", "明细"),
    "orders.add_line": ("Add product", "添加产品"),
    "orders.quantity": ("Qty", "数量"),
    "orders.price": ("Unit price", "单价"),
    "orders.discount": ("Discount %", "折扣 %"),
    "orders.line_total": ("Line total {total}", "小计 {total}"),
    "orders.totals": (
        "Subtotal {gross} · discount {discount} · tax {tax} · total {total}",
        "合计 {gross} · 折扣 {discount} · 税 {tax} · 总额 {total}",
    ),
    "orders.fix_lines": ("Fix the marked lines to see the total.", "请修改标出的明细后查看总额。"),
    "orders.no_lines": ("Add at least one product.", "请至少添加一个产品。"),
    "orders.bad_number": ("Type a number (0 or more)", "请输入不小于 0 的数字"),
    "orders.place": ("Place order", "下单"),
    "orders.placed": ("Order placed; it syncs when online.", "已下单，联网后同步。"),
    "orders.locked": (
        "This {kind} is {status}: it can no longer be changed here.",
        "该{kind}状态为「{status}」，不能在此修改。",
    ),
    # knowledge
    "kb.title": ("Knowledge base", "知识库"),
    "kb.search": ("Search articles (characters or pinyin)", "搜索文章（汉字或拼音）"),
    "kb.empty": ("No articles match.", "没有匹配的文章。"),
    "kb.link": ("Link to a ticket", "关联到工单"),
    "kb.linked": ("Linked to the ticket.", "已关联到工单。"),
    "kb.linked_comment": ("📎 Knowledge base: {title}", "📎 知识库：{title}"),
    "kb.no_tickets": ("No open tickets to link to.", "没有可关联的未关闭工单。"),
    # targets
    "targets.title": ("My targets", "我的目标"),
    "targets.empty": ("No targets set for you.", "暂无销售目标。"),
    "targets.line": (
        "Won {won} of {target} ({pct}%) · {left} to go · {days} d left · open pipeline {pipeline}",
        "已赢单 {won} / 目标 {target}（{pct}%）· 还差 {left} · 剩 {days} 天 · 在途加权 {pipeline}",
    ),
    # tickets
    "tickets.knowledge": ("Knowledge base", "知识库"),
    # sign out and what would be lost
    "loss.title": ("Sign out", "退出登录"),
    "loss.nothing": (
        "Everything on this phone is on the server. Signing out erases this phone's copy.",
        "本机数据都已在服务器上。退出登录将清除本机副本。",
    ),
    "loss.would_lose": ("Signing out now would erase:", "现在退出登录将清除："),
    "loss.pending": ("{n} unsent change(s) to {what}", "{n} 条未上传的{what}修改"),
    "loss.rejected": ("{n} write(s) the server refused", "{n} 条被服务器拒绝的修改"),
    "loss.conflicts": ("{n} conflict(s) not decided", "{n} 个未处理的冲突"),
    "loss.photos": ("{n} photo(s) not uploaded", "{n} 张未上传的照片"),
    "loss.sync": ("Sync now", "立即同步"),
    "loss.export": ("Export to a file", "导出到文件"),
    "loss.discard": ("Discard these and sign out", "放弃这些并退出"),
    "loss.sign_out": ("Sign out", "退出登录"),
    "loss.synced_all": ("Everything is on the server now.", "现在已全部上传到服务器。"),
    "loss.still_unsent": ("Some work is still not on the server.", "仍有内容未上传到服务器。"),
    "loss.exported": ("Saved to {path}", "已保存到 {path}"),
    "loss.refused": (
        "Not signed out: that would erase work. Sync, export, or choose Discard.",
        "未退出：这会清除未上传的内容。请先同步、导出，或选择放弃。",
    ),
    "session.wiped": (
        "An administrator erased this phone's data. Sign in again to continue.",
        "管理员已清除本机数据。请重新登录。",
    ),
    "session.revoked": (
        "This phone was signed out by an administrator. Your unsent work is kept: export "
        "it before signing out.",
        "管理员已停用本设备。未上传的内容仍保留在本机，请先导出再退出。",
    ),
    "session.lease": (
        "Sign in online to keep working offline (your work is kept).",
        "请联网登录后继续离线工作（数据已保留）。",
    ),
    # rejected writes, by error code
    "rejected.kept": ("Kept as a note on this phone.", "已作为备注保存在本机。"),
    "rejected.keep": ("Keep as a note", "保存为备注"),
    "rejected.resend": ("Send again", "重新发送"),
    "rejected.kept_title": ("Notes kept on this phone", "本机保存的备注"),
    "rejected.code.validation_failed": (
        "The server did not accept this {what}:",
        "服务器未接受该{what}：",
    ),
    "rejected.code.forbidden": (
        "This {what} is no longer yours to change (it was reassigned or is outside your "
        "area). Your text can be kept as a note.",
        "该{what}已不归您管理（已转给他人或不在您的范围内），无法提交。可以把您写的内容保存为备注。",
    ),
    "rejected.code.evicted": (
        "The customer of this {what} was reassigned to a colleague while you were offline. "
        "Your text can be kept as a note.",
        "您离线期间，该{what}所属客户已转给同事。可以把您写的内容保存为备注。",
    ),
    "rejected.code.not_found": (
        "This {what} no longer exists on the server.",
        "服务器上已没有该{what}。",
    ),
    "rejected.code.record_deleted": (
        "This {what} was deleted by someone else.",
        "该{what}已被他人删除。",
    ),
    "rejected.code.append_only": (
        "A {what} cannot be changed once saved.",
        "{what}保存后不能修改。",
    ),
    "rejected.code.total_mismatch": (
        "The totals of this {what} differ from the server's calculation.",
        "该{what}的金额与服务器计算不一致。",
    ),
    "rejected.code.possible_duplicate": (
        "The server thinks this {what} already exists.",
        "服务器认为该{what}已存在。",
    ),
    "rejected.dup.visible": (
        "The server already has {other} 「{name}」 with the same {on}. If yours is a "
        "different one, keep it; if it is the same, add your work to 「{name}」.",
        "服务器上已有{other}「{name}」（{on}相同）。如果您的是另一家，请选择“仍然保存”；"
        "如果是同一家，可以把您的记录并入「{name}」。",
    ),
    "rejected.dup.colleague": (
        "A colleague already has a customer with the same {on}. Keep yours only if it "
        "is a different one; otherwise ask your manager.",
        "同事名下已有{on}相同的客户（可能撞单）。确认是另一家时再选择“仍然保存”，否则请联系主管。",
    ),
    "rejected.dup.on.phone": ("phone number", "电话"),
    "rejected.dup.on.email": ("e-mail", "邮箱"),
    "rejected.dup.on.name_company": ("name", "名称"),
    "rejected.keep_anyway": ("Keep anyway", "仍然保存"),
    "rejected.use_existing": ("Use 「{name}」", "并入「{name}」"),
    "rejected.kept_anyway": (
        "Sent again: you said it is a different one.",
        "已重新提交（您确认不是重复）。",
    ),
    "rejected.used_existing": (
        "Added to the existing customer ({n} change(s) sent again).",
        "已并入已有客户（{n} 条修改重新提交）。",
    ),
    "rejected.use_failed": (
        "Could not add it to the existing customer ({reason}); nothing was discarded.",
        "未能并入已有客户（{reason}），没有丢弃任何内容。",
    ),
    "rejected.discard_confirm": (
        "Discard 「{title}」 ({n} change(s))? What you typed is gone for good.",
        "丢弃「{title}」（{n} 条修改）？丢弃后无法恢复。",
    ),
    "rejected.discard_all": ("Discard all {n}", "全部丢弃（{n} 条）"),
    "rejected.code.already_converted": (
        "Someone else converted this {what} while you were offline, so your conversion "
        "was not saved; the phone shows theirs after the next sync.",
        "您离线期间，该{what}已被他人转化，您的转化未保存；下次同步后手机上会显示对方的转化结果。",
    ),
    "rejected.code.group_waits": (
        "This {what} was saved together with {other_what} 「{other}」, which the server "
        "refused; it is sent again or discarded with it.",
        "该{what}与{other_what}「{other}」一起保存，那一条被服务器拒绝；处理那一条时会一起重新发送或丢弃。",
    ),
    "rejected.code.group_rejected": (
        "This {what} was saved together with another change that was refused; "
        "fix that one and both are sent again.",
        "该{what}与另一条被拒绝的修改一起保存，修改那一条后会一起重新发送。",
    ),
    "rejected.code.internal_error": (
        "The server had a problem with this {what}; send it again.",
        "服务器处理该{what}时出错，请重新发送。",
    ),
    "rejected.code.other": (
        "The server refused this {what} ({code}).",
        "服务器拒绝了该{what}（{code}）。",
    ),
}

CHOICES: dict[str, tuple[str, str]] = {
    "lead_status.new": ("New", "新线索"),
    "lead_status.contacted": ("Contacted", "已联系"),
    "lead_status.qualified": ("Qualified", "有效"),
    "lead_status.disqualified": ("Disqualified", "无效"),
    "lead_status.converted": ("Converted", "已转化"),
    "quote_kind.quote": ("Quote", "报价单"),
    "quote_kind.order": ("Order", "订单"),
    "quote_status.draft": ("Draft", "草稿"),
    "quote_status.sent": ("Sent", "已发送"),
    "quote_status.accepted": ("Accepted", "已接受"),
    "quote_status.rejected": ("Rejected", "已拒绝"),
    "quote_status.fulfilled": ("Fulfilled", "已履行"),
    "quote_status.cancelled": ("Cancelled", "已取消"),
}
