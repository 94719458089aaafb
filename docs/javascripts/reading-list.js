// Reading list: buttons above the table show only the papers of one status or one tag.
// Everything happens in the page (no server); without JavaScript the whole table is shown.
function setUpReadingList() {
  const box = document.querySelector(".reading-list")
  const table = box && box.querySelector("table")
  if (!table || box.querySelector(".reading-list__filters")) return
  const header = [...table.tHead.rows[0].cells].map((cell) => cell.textContent.trim())
  const statusColumn = header.indexOf("状态")
  const tagColumn = header.indexOf("标签")
  const rows = [...table.tBodies[0].rows].map((row) => ({
    row,
    status: row.cells[statusColumn].textContent.trim(),
    tags: row.cells[tagColumn].textContent.split("·").map((t) => t.trim()).filter((t) => t && t !== "—"),
  }))
  const order = ["待读", "在读", "已读"]
  const statuses = order.filter((s) => rows.some((r) => r.status === s))
  const tags = [...new Set(rows.flatMap((r) => r.tags))].sort((a, b) => a.localeCompare(b, "zh"))
  const chosen = { status: null, tag: null }
  const shown = document.createElement("span")
  shown.className = "reading-list__count"

  function apply() {
    let count = 0
    for (const r of rows) {
      const visible = (!chosen.status || r.status === chosen.status) && (!chosen.tag || r.tags.includes(chosen.tag))
      r.row.hidden = !visible
      count += visible
    }
    shown.textContent = `显示 ${count} / ${rows.length} 篇`
    for (const button of box.querySelectorAll(".reading-list__filters button")) {
      const on = chosen[button.dataset.kind] === (button.dataset.value || null)
      button.classList.toggle("md-button--primary", on)
      button.setAttribute("aria-pressed", String(on))
    }
  }

  function group(label, kind, values, count) {
    const line = document.createElement("div")
    line.append(`${label}：`)
    for (const value of ["", ...values]) {
      const button = document.createElement("button")
      button.type = "button"
      button.className = "md-button"
      button.dataset.kind = kind
      button.dataset.value = value
      button.textContent = value ? `${value} (${count(value)})` : "全部"
      button.addEventListener("click", () => { chosen[kind] = value || null; apply() })
      line.append(button)
    }
    return line
  }

  const filters = document.createElement("div")
  filters.className = "reading-list__filters"
  filters.append(
    group("状态", "status", statuses, (s) => rows.filter((r) => r.status === s).length),
    group("标签", "tag", tags, (t) => rows.filter((r) => r.tags.includes(t)).length),
    shown,
  )
  box.prepend(filters)
  apply()
}
if (typeof document$ !== "undefined") {
  document$.subscribe(setUpReadingList)
} else {
  document.addEventListener("DOMContentLoaded", setUpReadingList)
}
