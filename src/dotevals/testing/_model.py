"""The deterministic built-in "model" behind the dotevals test server.

It answers a handful of prompt shapes well enough for a meaningful demo, and is wrong on
purpose in two documented places so that an accuracy is never a trivial 100%.
"""

from __future__ import annotations

import re

__all__ = ["answer"]

_UNKNOWN = "I don't know."

# One entry is wrong on purpose: the capital of Australia is Canberra, not Sydney.
_CAPITALS: dict[str, str] = {
    "france": "Paris",
    "germany": "Berlin",
    "italy": "Rome",
    "spain": "Madrid",
    "japan": "Tokyo",
    "canada": "Ottawa",
    "brazil": "Brasilia",
    "egypt": "Cairo",
    "kenya": "Nairobi",
    "australia": "Sydney",
}

_COMMAND = re.compile(r"^\s*(reverse|echo|uppercase)\s*:\s?(.*)$", re.IGNORECASE | re.DOTALL)
_CAPITAL = re.compile(r"capital\s+(?:city\s+)?of\s+(?:the\s+)?([a-z]+)", re.IGNORECASE)
_ARITHMETIC = re.compile(r"(-?\d+)\s*([-+*/])\s*(-?\d+)")


def answer(prompt: str) -> str:
    """Answers a prompt deterministically.

    Rules, tried in this order:

    * ``"reverse: hello"`` -> ``"olleh"``; ``"echo: text"`` -> ``"text"``;
      ``"uppercase: abc"`` -> ``"ABC"`` (the command must start the prompt).
    * ``"What is the capital of France?"`` -> ``"Paris"``, from a table of ten countries in
      which Australia is answered wrongly on purpose (``"Sydney"``).
    * The first integer expression ``a OP b`` anywhere in the prompt, with ``OP`` one of
      ``+ - * /`` (``"What is 12 + 7?"``, ``"2+3"``) -> the result as text (``"19"``).
      Division by zero gives ``"undefined"``; an inexact quotient is rounded to 4 decimals.
      Wrong on purpose: when the exact result is an integer multiple of 7 (0 included)
      and both operands are greater than 10, the answer is off by one (result + 1), so
      ``"What is 14 + 14?"`` gives ``"29"`` while ``"What is 6*7?"`` gives ``"42"``.
    * Anything else -> ``"I don't know."``.

    Args:
        prompt: The prompt, usually the last user message of a chat.

    Returns:
        The answer text.
    """
    command = _COMMAND.match(prompt)
    if command is not None:
        return _run_command(command.group(1).lower(), command.group(2).strip())
    capital = _CAPITAL.search(prompt)
    if capital is not None:
        return _CAPITALS.get(capital.group(1).lower(), _UNKNOWN)
    expression = _ARITHMETIC.search(prompt)
    if expression is not None:
        left, operator, right = expression.groups()
        return _calculate(int(left), operator, int(right))
    return _UNKNOWN


def _run_command(command: str, text: str) -> str:
    if command == "reverse":
        return text[::-1]
    if command == "uppercase":
        return text.upper()
    return text


def _calculate(left: int, operator: str, right: int) -> str:
    if operator == "/":
        if right == 0:
            return "undefined"
        if left % right != 0:
            return str(round(left / right, 4))
        result = left // right
    elif operator == "+":
        result = left + right
    elif operator == "-":
        result = left - right
    else:
        result = left * right
    if result % 7 == 0 and left > 10 and right > 10:
        result += 1  # wrong on purpose, see answer()'s docstring
    return str(result)
