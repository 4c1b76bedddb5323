"""Configuration records managers keep and every device reads (schema v2)."""

from __future__ import annotations

from ..custom_fields import CUSTOM_ENTITIES, DEFINITIONS_COLLECTION, CustomType
from ..schema import EntitySchema, Scope
from ._common import MANAGERS, T, f

custom_field_defs = EntitySchema(
    name=DEFINITIONS_COLLECTION,
    label="Custom field",
    label_zh="自定义字段",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    added_in=2,
    fields={
        "entity": f(T.ENUM, "Entity", "对象", required=True, choices=CUSTOM_ENTITIES, added_in=2),
        "key": f(T.STRING, "Key", "字段键", required=True, max_length=40, added_in=2),
        "type": f(
            T.ENUM,
            "Type",
            "类型",
            required=True,
            choices=tuple(t.value for t in CustomType),
            added_in=2,
        ),
        "label": f(T.STRING, "Label", "英文名称", required=True, max_length=100, added_in=2),
        "label_zh": f(T.STRING, "Chinese label", "中文名称", max_length=100, added_in=2),
        "options": f(T.TAGS, "Options", "选项", added_in=2),
        "required": f(T.BOOLEAN, "Required", "必填", added_in=2),
        "active": f(T.BOOLEAN, "Active", "启用", added_in=2),
        "position": f(T.INTEGER, "Order", "顺序", minimum=0, added_in=2),
    },
)
