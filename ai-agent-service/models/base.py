"""The declarative base every table model derives from."""

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
