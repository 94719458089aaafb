"""mkdocs-gen-files script: the pages built from papers/, glossary.yaml and refimpl/.

Runs inside ``mkdocs build``/``serve``; the page contents come from ``paper_notes.site``.
"""

from pathlib import Path

import mkdocs_gen_files

from paper_notes.figures import cached_figures
from paper_notes.glossary import render_glossary_page
from paper_notes.project import load_project
from paper_notes.registry import bibliography
from paper_notes.site import READING_LIST, api_reference_pages, paper_page, reading_list_index, reading_list_nav

root = Path(mkdocs_gen_files.config.config_file_path).resolve().parent
project = load_project(root)  # validated already by the hook's on_config; cheap to reload
titles = {pid: p.title for pid, p in project.papers.items()}


def write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


write(f"{READING_LIST}/index.md", reading_list_index(project))
write(f"{READING_LIST}/SUMMARY.md", reading_list_nav(project))
for paper in project.papers.values():
    write(f"{READING_LIST}/{paper.id}.md", paper_page(project, paper))
    mkdocs_gen_files.set_edit_path(f"{READING_LIST}/{paper.id}.md", paper.path.relative_to(root).as_posix())
write("papers.bib", bibliography(project.papers))
write("glossary.md", render_glossary_page(project.glossary, titles))

for doc, text in api_reference_pages(root / "refimpl").items():
    write(f"reference/{doc}", text)

# Figures for the concept pages, drawn from refimpl; redrawn only when their code, the refimpl
# modules it imports or their package versions change (cache in .cache/site/figures).
for name, svg in cached_figures(root):
    with mkdocs_gen_files.open(f"figures/{name}", "wb") as handle:
        handle.write(svg)
