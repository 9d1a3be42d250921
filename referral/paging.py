"""One page of a query's rows, and how many there are: for the admin's long lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

#: the most rows one admin page shows
MAX_PER_PAGE = 100


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def page_number(text: str | None) -> int:
    """``?page=`` as a page number: anything that is not a positive number is page 1."""
    return int(text) if text and text.isdigit() and 0 < int(text) < 10**6 else 1


def paginate(session: Session, statement: Select, page: int, per_page: int) -> Page:
    """Rows ``(page - 1) * per_page`` onwards of an ordered ``select`` of entities; a page
    past the last shows the last."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    last = max(1, -(-(total or 0) // per_page))
    page = min(max(page, 1), last)
    items = list(session.scalars(statement.limit(per_page).offset((page - 1) * per_page)))
    return Page(items, total or 0, page, per_page)


def contains(text: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching any value that holds ``text``."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
