from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so the migration and the models agree.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
