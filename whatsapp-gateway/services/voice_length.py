"""How long a voice note is, told from its audio when Wappi did not say: WhatsApp voice notes are Ogg Opus,
whose pages carry the position of their last sample (the granule, always at 48 kHz for Opus), so the last
page's granule is the note's length."""

OPUS_RATE = 48_000
PAGE_MARK = b"OggS"
OPUS_HEADER = b"OpusHead"
GRANULE = slice(6, 14)  # bytes of an Ogg page header


def ogg_opus_seconds(audio: bytes) -> float | None:
    """Seconds of Ogg Opus audio; None when it is not Ogg Opus or says no length."""
    if not audio.startswith(PAGE_MARK) or OPUS_HEADER not in audio[:512]:
        return None
    last_page = audio.rfind(PAGE_MARK)
    header = audio[last_page : last_page + 14]
    if len(header) < 14 or header[4] != 0:  # version 0 is the only one there is
        return None
    granule = int.from_bytes(header[GRANULE], "little", signed=True)
    return granule / OPUS_RATE if granule > 0 else None
