// MathJax 3 configuration for pymdownx.arithmatex (generic mode). The MathJax files themselves
// are served from this site (assets/mathjax/), never from a CDN.
window.MathJax = {
  tex: {
    // pymdownx.arithmatex (and the paper-notes plugin, for notebooks) wrap math in these delimiters inside
    // elements of class "arithmatex"; nothing else on a page is searched for math.
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
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
      if (MathJax.startup.output.clearCache) MathJax.startup.output.clearCache();  // CHTML only
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
