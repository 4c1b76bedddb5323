import sync_protocol.merge as m
_o=m._merge_fields
def f(out,*a):
    _o(out,*a); out.changed.add('title')
m._merge_fields=f
