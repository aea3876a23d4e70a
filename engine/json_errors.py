"""What json.loads raises on text a model or a stranger wrote, caught as one."""

# JSONDecodeError is a ValueError; RecursionError comes from nesting deeper than the parser's
# stack ("[" * 5000), which is short, valid-looking text a model can emit and history then keeps.
UNPARSABLE = (ValueError, RecursionError)
