// "Try it as a customer": keeps the chat scrolled to its newest message, and records a voice note with the
// browser's microphone (MediaRecorder) and sends it with the form, as the customer's WhatsApp voice message.
(function () {
  const chat = document.getElementById("chat");
  // The newest messages in view, as on a phone.
  if (chat) chat.addEventListener("htmx:afterSwap", function () { chat.scrollTop = chat.scrollHeight; });
  const form = document.getElementById("voice-form");
  if (!form) return;
  const record = document.getElementById("record");
  const stop = document.getElementById("stop");
  const state = document.getElementById("voice-state");
  const file = document.getElementById("voice-audio");
  let recorder = null;

  record.addEventListener("click", async function () {
    if (!form.reportValidity()) return;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      state.textContent = "Нет доступа к микрофону: " + error.name;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", function (event) { chunks.push(event.data); });
    recorder.addEventListener("stop", function () {
      stream.getTracks().forEach(function (track) { track.stop(); });
      const type = recorder.mimeType || "audio/webm";
      const transfer = new DataTransfer();
      transfer.items.add(new File(chunks, "voice.webm", { type: type }));
      file.files = transfer.files;
      state.textContent = "Отправляется…";
      form.submit();
    });
    recorder.start();
    record.hidden = true;
    stop.hidden = false;
    state.textContent = "Идёт запись…";
  });

  stop.addEventListener("click", function () {
    if (recorder && recorder.state === "recording") recorder.stop();
  });
})();
