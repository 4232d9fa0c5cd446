// 要件预审: each material's file input shows the chosen file's name in Chinese page text (the
// browser's own "no file" label is in the browser's language, not the page's).
"use strict";
document.querySelectorAll("input.draft").forEach((input) => {
  input.addEventListener("change", () => {
    const shown = document.querySelector(`.chosen[data-for="${input.dataset.material}"]`);
    if (shown) shown.textContent = input.files.length ? input.files[0].name : "未选择";
  });
});
