"""Transcriber: voice notes to text through Gemini (the gateway's only google-genai user)."""

import httpx
from google import genai
from google.genai import errors, types
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

# Clients speak Russian or Kazakh (often mixing both): the transcript keeps each word in the language it was
# said in; the agent tells the conversation's language from it.
PROMPT = (
    "Транскрибируй это голосовое сообщение клиента дословно, на том языке, на котором он говорит: "
    "на русском или на казахском (казахский — кириллицей, с буквами ә, ғ, қ, ң, ө, ұ, ү, һ, і). "
    "Ничего не переводи: если клиент смешивает языки, пиши каждое слово так, как оно сказано. "
    "Верни только текст сообщения, без комментариев и пояснений. "
    "Если речи нет или её невозможно разобрать, верни пустой ответ."
)
TRANSIENT_CODES = {408, 429, 500, 502, 503, 504}


class TranscriptionError(Exception):
    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TranscriptionError) and exc.transient


class Transcriber:
    """One google-genai client for the life of the service (a collected client closes its transport)."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str,
        timeout_s: float = 120.0,
        attempts: int = 3,
        backoff_initial: float = 1.0,
        backoff_max: float = 10.0,
    ):
        self._model = model
        self._attempts = attempts
        self._backoff = (backoff_initial, backoff_max)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url, timeout=int(timeout_s * 1000), httpx_async_client=self._http
            ),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _once(self, audio: bytes, mime_type: str) -> str:
        try:
            response = await self._client.aio.models.generate_content(
                model=self._model,
                contents=[types.Part.from_bytes(data=audio, mime_type=mime_type), PROMPT],
                config=types.GenerateContentConfig(temperature=0.0),
            )
        except errors.APIError as exc:
            if exc.code == 404:
                raise TranscriptionError(
                    f"Gemini model {self._model!r} not found: check GEMINI_MODEL", transient=False
                ) from exc
            raise TranscriptionError(
                f"Gemini answered {exc.code}: {exc.message}", transient=exc.code in TRANSIENT_CODES
            ) from exc
        except httpx.HTTPError as exc:
            raise TranscriptionError(f"Gemini unreachable ({type(exc).__name__})", transient=True) from exc
        return (response.text or "").strip()

    async def transcribe(self, audio: bytes, mime_type: str | None) -> str:
        """The verbatim text of the audio ('' when nothing could be heard)."""
        mime = (mime_type or "").split(";")[0].strip()
        if not mime.startswith("audio/"):
            mime = "audio/ogg"  # WhatsApp voice notes are OGG/Opus
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(initial=self._backoff[0], max=self._backoff[1]),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(audio, mime)
        raise AssertionError("unreachable")
