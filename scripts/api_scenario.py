"""The onboarding scenario against a running API (e.g. `make run`), over HTTP.

    python -m scripts.api_scenario http://127.0.0.1:8077 \
        --admin-email admin@fidus.example --admin-password '...'

The admin signs in with the bootstrap credentials, creates a client, approves its KYC, tries an
investment below the fund minimum (422 FUND_MINIMUM_NOT_MET), records one at the minimum (201),
repeats it with the same Idempotency-Key (200, the same investment), lists the client's
investments (one); the client signs in and sees exactly that investment. Each step is printed;
the exit status is 1 when a step fails. The admin credentials may also come from
FIDUS_BOOTSTRAP_ADMIN_EMAIL and FIDUS_BOOTSTRAP_ADMIN_PASSWORD.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from typing import Any

import httpx


class StepFailed(Exception):
    pass


class Scenario:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.passed = 0

    def step(self, title: str, check: Callable[[], str]) -> None:
        try:
            detail = check()
        except (StepFailed, httpx.HTTPError, KeyError, ValueError) as error:
            print(f"FAIL  {title}: {error}")
            raise StepFailed(title) from error
        self.passed += 1
        print(f"ok    {title}: {detail}")


def expect(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = response.json() if response.content else {}
    if response.status_code != status:
        raise StepFailed(f"expected {status}, got {response.status_code}: {response.text[:300]}")
    if code is not None and body.get("error", {}).get("code") != code:
        raise StepFailed(f"expected error code {code}, got {body}")
    return body


def run(base_url: str, admin_email: str, admin_password: str) -> int:
    api = base_url.rstrip("/") + "/api/v1"
    tag = secrets.token_hex(3)
    client_login = {"email": f"scenario.{tag}@fidus.example", "username": f"scenario-{tag}",
                    "password": f"scenario-pass-{tag}"}
    state: dict[str, Any] = {}
    with httpx.Client(base_url=api, timeout=30.0) as http:
        scenario = Scenario(http)

        def admin_login() -> str:
            body = expect(http.post("/auth/login", json={"login": admin_email,
                                                         "password": admin_password}), 200)
            state["admin"] = {"Authorization": f"Bearer {body['access_token']}"}
            return f"signed in as {body['user']['email']} ({body['user']['user_type']})"

        def create_client() -> str:
            body = expect(http.post("/admin/users", headers=state["admin"], json={
                **client_login, "first_name": "Ada", "last_name": f"Scenario {tag}"}), 201)
            state["client_id"] = body["id"]
            return f"client {body['username']} id {body['id']}, KYC {body['kyc_status']}"

        def approve_kyc() -> str:
            body = expect(http.post(f"/admin/users/{state['client_id']}/kyc",
                                    headers=state["admin"],
                                    json={"kyc_status": "approved",
                                          "reason": "scenario: documents checked"}), 200)
            return f"KYC {body['kyc_status']}"

        def investment(amount: str) -> dict[str, Any]:
            return {"client_id": state["client_id"], "fund_code": "CORE",
                    "principal_amount": amount, "currency": "USD", "deposit_date": "2026-11-02"}

        def below_minimum() -> str:
            body = expect(http.post("/admin/investments", headers=state["admin"],
                                    json=investment("9999.99")), 422, "FUND_MINIMUM_NOT_MET")
            return f"422 {body['error']['code']}: {body['error']['message']}"

        key = {"Idempotency-Key": f"scenario-{tag}-core-1"}

        def at_minimum() -> str:
            body = expect(http.post("/admin/investments", headers=state["admin"] | key,
                                    json=investment("10000.00")), 201)
            state["investment"] = body
            return f"201 {body['investment_id']} {body['principal_amount']} {body['currency']}"

        def replay() -> str:
            body = expect(http.post("/admin/investments", headers=state["admin"] | key,
                                    json=investment("10000.00")), 200)
            if body["id"] != state["investment"]["id"]:
                raise StepFailed(f"a second investment was recorded: {body['investment_id']}")
            return f"200, the same investment {body['investment_id']}"

        def admin_lists() -> str:
            body = expect(http.get("/admin/investments", headers=state["admin"],
                                   params={"client_id": state["client_id"]}), 200)
            if body["total"] != 1:
                raise StepFailed(f"expected 1 investment, found {body['total']}")
            return f"{body['total']} investment ({body['items'][0]['client_name']})"

        def client_sees_own() -> str:
            tokens = expect(http.post("/auth/login", json={
                "login": client_login["username"], "password": client_login["password"]}), 200)
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            body = expect(http.get("/client/investments", headers=headers), 200)
            ids = [item["id"] for item in body["items"]]
            if ids != [state["investment"]["id"]]:
                raise StepFailed(f"the client sees {ids}")
            item = body["items"][0]
            return (f"exactly its own {item['investment_id']}, current value "
                    f"{item['current_value']}, return {item['return_pct']}%")

        steps = [
            ("admin signs in with the bootstrap credentials", admin_login),
            ("admin creates a client", create_client),
            ("admin approves the client's KYC", approve_kyc),
            ("investment below the CORE minimum is refused", below_minimum),
            ("investment at the CORE minimum is recorded", at_minimum),
            ("the same Idempotency-Key records nothing new", replay),
            ("admin lists the client's investments", admin_lists),
            ("the client signs in and sees its investment", client_sees_own),
        ]
        try:
            for title, check in steps:
                scenario.step(title, check)
        except StepFailed:
            print(f"scenario failed after {scenario.passed} of {len(steps)} steps")
            return 1
    print(f"scenario passed: {len(steps)} of {len(steps)} steps")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.api_scenario",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8077")
    parser.add_argument("--admin-email", default=os.environ.get("FIDUS_BOOTSTRAP_ADMIN_EMAIL"))
    parser.add_argument("--admin-password",
                        default=os.environ.get("FIDUS_BOOTSTRAP_ADMIN_PASSWORD"))
    args = parser.parse_args(argv)
    if not args.admin_email or not args.admin_password:
        parser.error("the admin e-mail and password are required")
    try:
        return run(args.base_url, args.admin_email, args.admin_password)
    except httpx.HTTPError as error:
        print(f"cannot reach {args.base_url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
