# Python values to JSON-able values (E-3.3).
INF = float("inf")


def plain(v, depth=0):
    if v is None or v is True or v is False or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        if v != v or v == INF or v == -INF:
            return None
        return v
    if depth > 32:
        return repr(v)
    if isinstance(v, (list, tuple)):
        return [plain(x, depth + 1) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                return repr(v)
        out = {}
        for k in v:
            out[k] = plain(v[k], depth + 1)
        return out
    return repr(v)
