// A confirmation dialog (<dialog>, modal, focus kept inside, Escape cancels). An irreversible
// action may ask the person to type a word (the customer id for erasure) before it can go on.

import { h } from '../dom';

export interface ConfirmOpts {
  title: string;
  text: string;
  confirmLabel: string;
  danger?: boolean;
  /** the confirm button stays disabled until this is typed exactly */
  typeToConfirm?: string;
}

export function confirmDialog(o: ConfirmOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const input = o.typeToConfirm ? h('input', { id: 'confirm-input', autocomplete: 'off', spellcheck: 'false' }) : null;
    const ok = h('button', { type: 'submit', class: o.danger ? 'danger' : '', disabled: !!o.typeToConfirm, 'data-testid': 'confirm-ok' }, o.confirmLabel);
    const cancel = h('button', { type: 'button', 'data-testid': 'confirm-cancel' }, 'Cancel');
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'confirm-title' }, o.title),
      h('p', { id: 'confirm-text' }, o.text),
      input ? h('div', { class: 'field' }, h('label', { for: 'confirm-input' }, `Type ${o.typeToConfirm} to confirm`), input) : null,
      h('div', { class: 'dialog-buttons' }, cancel, ok));
    const dlg = h('dialog', { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text', 'data-testid': 'confirm-dialog' }, form);
    let done = false;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    input?.addEventListener('input', () => { ok.disabled = input.value.trim() !== o.typeToConfirm; });
    form.addEventListener('submit', (e) => { e.preventDefault(); if (!ok.disabled) finish(true); });
    cancel.addEventListener('click', () => finish(false));
    dlg.addEventListener('cancel', () => finish(false));
    dlg.addEventListener('close', () => finish(false));
    document.body.appendChild(dlg);
    dlg.showModal();
    (input ?? cancel).focus();
  });
}
