"""The least an app can do for GET /api/registrations/{id} behind the local host: the same SQL through the same
pool, the row as JSON, nothing else (no auth, validation, models, access log or error mapping).

`python -m bench --ceiling` serves it (`--app bench.ceiling_app:app`) and drives get_by_id at c=32 against
it: its throughput over the floor's is the best app/floor any app could reach behind this HTTP stand-in.
"""

from __future__ import annotations

import json
import uuid

import azure.functions as func

from shared import db
from shared.registrations import SELECT_REGISTRATION_BY_ID_SQL

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="registrations/{registration_id}", methods=["GET"])
async def get_registration(req: func.HttpRequest) -> func.HttpResponse:
    async with db.connection() as conn:
        row = await conn.fetchrow(SELECT_REGISTRATION_BY_ID_SQL, uuid.UUID(req.route_params["registration_id"]))
    return func.HttpResponse(json.dumps(dict(row) if row else None, default=str), mimetype="application/json")
