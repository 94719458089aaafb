// MathJax 3 configuration for pymdownx.arithmatex (generic mode). The MathJax files themselves
// are served from this site (assets/mathjax/), never from a CDN.
window.MathJax = {
  tex: {
    // \( \) and \[ \] come from pymdownx.arithmatex; $ and $$ from notebook Markdown cells.
    // Only elements with class "arithmatex" are ever searched (see options below).
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  loader: {
    // Extensions and fonts load relative to tex-svg.js, i.e. from this site.
    paths: { mathjax: new URL("../assets/mathjax", document.currentScript.src).href },
  },
};

// Material's instant navigation swaps pages without a reload: typeset each new page.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.startup && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
