// Requeue buttons on the dead-letter page (admins only; the server checks the role too).
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  document.getElementById("deadletters").addEventListener("click", async (event) => {
    const button = event.target.closest("button.requeue");
    if (!button) return;
    button.disabled = true;
    const response = await fetch(`/api/deadletters/${button.dataset.id}/requeue`, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
    });
    const body = await response.json();
    if (response.ok) {
      button.replaceWith(document.createTextNode(`requeued to ${body.topic}`));
    } else {
      button.disabled = false;
      alert(`${response.status}: ${body.detail}`);
    }
  });
})();
