// On concept pages the code is the point: show mkdocstrings' "source code" blocks expanded.
// (API reference pages keep them collapsed.)
function openConceptSources() {
  if (!location.pathname.includes("/concepts/")) return;
  document.querySelectorAll("details.mkdocstrings-source").forEach((d) => d.setAttribute("open", ""));
}
if (typeof document$ !== "undefined") {
  document$.subscribe(openConceptSources);
} else {
  document.addEventListener("DOMContentLoaded", openConceptSources);
}
