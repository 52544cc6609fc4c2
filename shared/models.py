"""Request and response models: the same pydantic models validate input and render output."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: UUID
    entra_id: str
    email: str
    display_name: str
    is_admin: bool
    created_at: datetime
    updated_at: datetime
