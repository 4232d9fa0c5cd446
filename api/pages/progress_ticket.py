"""The progress page's ticket: a lookup that passed, carried from the POST to the GET it redirects to.

The query code is the applicant's credential, so it never goes into an address. After the POST
checked it, the answer is a 303 to ``/progress?number=…`` with the number and code in a sealed
cookie (``api.pages.sealed``; only sent to /progress, for ``MINUTES``): the GET opens it and
looks the case up again, through the same limiters. F5 then repeats a GET, never the POST, and
Back returns to pages that are fetched again. A ticket for another number is ignored.

A lookup counts once against the client's budget: the POST that checked the code counted it, so
the ticket it gives says so, and the one GET that follows it within ``sealed.FRESH_SECONDS`` does not
count again (a nonce each ticket, spent on its first use in this process; F5 after that counts
as the new lookup it is). A refused POST (a wrong code, a lockout) redirects too: why is sealed
in a second cookie that the GET shows once, so F5 on it re-posts nothing and counts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from api.pages.sealed import Refusal, SealedCookie, fresh_nonce, open_refusal, refusal_value, spend_fresh

MINUTES = 15
TICKET = SealedCookie("tb_progress", "/progress", MINUTES * 60, b"tongban-progress-ticket")
REFUSED = SealedCookie("tb_progress_refused", "/progress", 120, b"tongban-progress-refusal")


@dataclass(frozen=True)
class Ticket:
    code: str
    counted: bool  # the POST that gave it counted this lookup already


def give(request: Request, resp: Response, number: str, code: str, counted: bool = True) -> None:
    TICKET.give(request, resp, [number, code, fresh_nonce() if counted else None])
    REFUSED.clear(request, resp)


def ticket_for(request: Request, number: str) -> Ticket | None:
    """The lookup of ``number`` that passed in this browser lately, else None."""
    value = TICKET.open(request)
    if not number or not isinstance(value, list) or len(value) != 3:
        return None
    sealed_number, code, mark = value
    if sealed_number != number or not isinstance(code, str):
        return None
    return Ticket(code, spend_fresh(mark))


def refuse(request: Request, resp: Response, number: str, detail: str, status: int, retry_after: int | None,
           keep_ticket: bool) -> None:
    """Seal why the POST was refused for the GET to show once; a wrong code also drops the ticket."""
    REFUSED.give(request, resp, refusal_value(number, detail, status, retry_after))
    if not keep_ticket:
        TICKET.clear(request, resp)


def refusal(request: Request, number: str) -> Refusal | None:
    return open_refusal(REFUSED, request, number)
