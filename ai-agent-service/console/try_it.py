"""Try it as a customer, on a sandbox install (SANDBOX_URL set): the page plays a client's phone. Pick or type
a number and a name, write to the business or record a voice note, and watch the bot's replies arrive (the
chat refreshes itself from the sandbox's fake WhatsApp). Without SANDBOX_URL there is no such page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from api.deps import RuntimeDep
from config.runtime import Runtime
from console.pages import render
from console.session import ConsoleRefusal, CsrfChecked, SignedIn
from services.sandbox_client import Customer, SandboxClient, SandboxUnavailable

router = APIRouter(include_in_schema=False)
PAGE = "/console/try"
PHONE = r"^[0-9]{5,20}$"
MAX_VOICE_BYTES = 5 * 1024 * 1024
# Numbers to pick from: ready-made customers, as make demo's morning has them.
SAMPLE_CUSTOMERS = (
    Customer("77019990001", "Айгерим", "ТОО Алтын Дала"),
    Customer("77019990002", "Ерлан", "ИП Сейткали"),
    Customer("77019990003", "Мадина", ""),
)


class CustomerChoice(BaseModel):
    phone: str = Field(default=SAMPLE_CUSTOMERS[0].phone, pattern=PHONE)
    name: str = Field(default=SAMPLE_CUSTOMERS[0].name, max_length=60)
    business: str = Field(default=SAMPLE_CUSTOMERS[0].business_name, max_length=100)

    def customer(self) -> Customer:
        return Customer(self.phone, self.name.strip(), self.business.strip())


ChoiceDep = Annotated[CustomerChoice, Query()]
FormPhone = Annotated[str, Form(pattern=PHONE)]
FormName = Annotated[str, Form(max_length=60)]
FormBusiness = Annotated[str, Form(max_length=100)]


@router.get(PAGE)
async def try_page(request: Request, _: SignedIn, runtime: RuntimeDep, choice: ChoiceDep) -> HTMLResponse:
    _sandbox(runtime)
    context = {"choice": choice, "samples": SAMPLE_CUSTOMERS, "query": _query(choice.customer())}
    return render(request, "try_it.html", context, runtime=runtime)


@router.get(PAGE + "/chat")
async def chat_fragment(
    request: Request, _: SignedIn, runtime: RuntimeDep, choice: ChoiceDep
) -> HTMLResponse:
    try:
        messages = await _sandbox(runtime).chat(choice.phone)
    except SandboxUnavailable as exc:
        raise ConsoleRefusal(503, "Песочница не отвечает.", back=PAGE) from exc
    shown = [_shown(message, runtime) for message in messages]
    return render(request, "try_it_chat.html", {"messages": shown}, runtime=runtime)


@router.post(PAGE + "/messages")
async def write(
    _: CsrfChecked,
    runtime: RuntimeDep,
    phone: FormPhone,
    name: FormName,
    business: FormBusiness,
    text: Annotated[str, Form(min_length=1, max_length=4096)],
) -> RedirectResponse:
    customer = Customer(phone, name.strip(), business.strip())
    await _sending(_sandbox(runtime).write(customer, text.strip()))
    return _back(customer)


@router.post(PAGE + "/voice")
async def send_voice(
    _: CsrfChecked,
    runtime: RuntimeDep,
    phone: FormPhone,
    name: FormName,
    business: FormBusiness,
    said: Annotated[str, Form(min_length=1, max_length=1000)],
    audio: Annotated[UploadFile, File()],
) -> RedirectResponse:
    customer = Customer(phone, name.strip(), business.strip())
    recorded = await audio.read(MAX_VOICE_BYTES + 1)
    if not recorded or len(recorded) > MAX_VOICE_BYTES:
        raise ConsoleRefusal(422, "Запись пустая или длиннее 5 МБ.", back=PAGE + "?" + _query(customer))
    await _sending(_sandbox(runtime).send_voice(customer, recorded, said.strip()))
    return _back(customer)


async def _sending(call) -> None:
    try:
        await call
    except SandboxUnavailable as exc:
        raise ConsoleRefusal(503, "Песочница не приняла сообщение: она не отвечает.", back=PAGE) from exc


def _sandbox(runtime: Runtime) -> SandboxClient:
    if not runtime.settings.SANDBOX_URL:
        raise ConsoleRefusal(
            404,
            "Эта страница есть только в установке на песочнице (SANDBOX_URL): здесь пишут настоящие клиенты.",
        )
    return SandboxClient(runtime.settings.SANDBOX_URL)


def _shown(message: dict, runtime: Runtime) -> dict:
    voice = message.get("type") == "ptt"
    moment = datetime.fromtimestamp(int(message.get("time") or 0), UTC)
    return {
        "mine": not message.get("is_me"),  # the customer's own message
        "text": "🎤 Голосовое сообщение"
        if voice
        else str(message.get("body") or message.get("caption") or ""),
        "at": moment,
    }


def _query(customer: Customer) -> str:
    return urlencode({"phone": customer.phone, "name": customer.name, "business": customer.business_name})


def _back(customer: Customer) -> RedirectResponse:
    return RedirectResponse(f"{PAGE}?{_query(customer)}", status_code=status.HTTP_303_SEE_OTHER)
