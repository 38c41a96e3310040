// Shared widgets: the status line, dialogs, error boxes and the agent picker.

import { get } from "./api.js";
import { h, replace } from "./dom.js";

/** Announce a result in the status line (a polite live region screen readers read out). */
export function notify(message, kind = "ok") {
  const line = document.getElementById("status");
  if (!line) return;
  line.className = `status ${kind}`;
  line.textContent = message;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => {
    line.textContent = "";
    line.className = "status";
  }, 6000);
}

/** The message an API error should show a person, with its code for support. */
export function explain(error) {
  if (!error) return "Something went wrong.";
  if (error.status === 401) return `The server did not accept the key: ${error.message} (${error.code}).`;
  if (error.status === 403) return `This key may not do that: ${error.message} (${error.code}).`;
  if (error.code) return `${error.message} (${error.code})`;
  return String(error.message || error);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, explain(error));
}

/** Run an action from a button: disables it meanwhile, reports failure in the status line. */
export async function act(button, work) {
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (error) {
    notify(explain(error), "bad");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A modal <dialog> (focus is kept inside; Escape closes it). Resolves to the button's value. */
function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const box = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "dialog-title" },
      h("h2", { id: "dialog-title" }, title),
      body,
      h(
        "div",
        { class: "actions" },
        buttons.map(([label, value, cls]) =>
          h("button", { type: "button", class: cls, on: { click: () => box.close(value) } }, label),
        ),
      ),
    );
    box.addEventListener("close", () => {
      box.remove();
      resolve(box.returnValue);
    });
    document.body.appendChild(box);
    box.showModal();
  });
}

/** Ask before something that cannot be undone. */
export async function confirmAction(title, message, confirmLabel) {
  const answer = await dialog(title, h("p", null, message), [
    ["Cancel", "cancel", "btn"],
    [confirmLabel, "confirm", "btn danger"],
  ]);
  return answer === "confirm";
}

/** Show a new secret once, with a copy button; the console keeps no copy of it. */
export async function showSecret(title, secret, note) {
  const code = h("code", { class: "secret", id: "new-secret" }, secret);
  const copy = h(
    "button",
    {
      type: "button",
      class: "btn",
      on: {
        click: async () => {
          try {
            await navigator.clipboard.writeText(secret);
            copy.textContent = "Copied";
          } catch {
            copy.textContent = "Select the text to copy it";
          }
        },
      },
    },
    "Copy",
  );
  await dialog(
    title,
    [h("p", null, note), h("div", { class: "secret-row" }, code, copy)],
    [["I have saved it", "done", "btn primary"]],
  );
}

/** Ask for one value in a dialog (returns null on cancel). */
export async function promptValue(title, label, input) {
  const answer = await dialog(title, h("div", { class: "field" }, h("label", { for: input.id }, label), input), [
    ["Cancel", "cancel", "btn"],
    ["OK", "ok", "btn primary"],
  ]);
  return answer === "ok" ? input.value : null;
}

/** A <select> of the agents the key can see; calls `onPick(agentId)` on change. */
export async function agentPicker(current, onPick, signal) {
  const select = h("select", { id: "agent-pick", on: { change: () => onPick(select.value) } });
  const agents = await get("/v1/agents", null, signal);
  const ids = agents.map((a) => a.agent_id).sort();
  if (current && !ids.includes(current)) ids.unshift(current);
  replace(select, h("option", { value: "" }, "Choose an agent…"), ids.map((id) => h("option", { value: id }, id)));
  select.value = current || "";
  return h("div", { class: "field inline" }, h("label", { for: "agent-pick" }, "Agent"), select);
}

export function loading(text = "Loading…") {
  return h("p", { class: "muted", role: "status" }, text);
}

export function empty(text) {
  return h("p", { class: "muted empty" }, text);
}

/** Mark a control as one that changes data (tests check read keys never get one). */
export function writes(el) {
  el.dataset.write = "";
  return el;
}
