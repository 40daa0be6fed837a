"""The papers the built-in methods come from (arXiv ids as in the issue / SPEC; first author, year, venue)."""

from __future__ import annotations

from .base import Paper

LOTUS = Paper(
    "LoTUS: Large-Scale Machine Unlearning with a Taste of Uncertainty",
    "2503.18314",
    "Christoforos N. Spartalis",
    2025,
    "CVPR 2025",
    "inproceedings",
)
SCRUB = Paper(
    "Towards Unbounded Machine Unlearning", "2302.09880", "Meghdad Kurmanji", 2023, "NeurIPS 2023", "inproceedings"
)
SSD = Paper(
    "Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening",
    "2308.07707",
    "Jack Foster",
    2023,
    "AAAI 2024",
    "inproceedings",
)
DEL = Paper(
    "Improved Localized Machine Unlearning Through the Lens of Memorization",
    "2412.02432",
    "Reihaneh Torkzadehmahani",
    2024,
    "TMLR 2025",
    "article",
)
SALUN = Paper(
    "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in both Image Classification "
    "and Generation",
    "2310.12508",
    "Chongyu Fan",
    2023,
    "ICLR 2024",
    "inproceedings",
)
BAD_TEACHER = Paper(
    "Can Bad Teaching Induce Forgetting? Unlearning in Deep Networks using an Incompetent Teacher",
    "2205.08096",
    "Vikram S Chundawat",
    2022,
    "AAAI 2023",
    "inproceedings",
)
UNSIR = Paper(
    "Fast Yet Effective Machine Unlearning", "2111.08947", "Ayush K Tarun", 2021, "IEEE TNNLS 2023", "article"
)


def method_facts(name: str) -> dict:
    """``{"name", "display_name", "papers": [{"title", "arxiv_id", "url", "venue", "bibtex"}]}`` of a registered
    method, read from its class; an unknown name (a card of a method not installed here) gets its raw name and no
    papers rather than an error."""
    from .base import _REGISTRY

    cls = _REGISTRY.get(str(name))
    papers = getattr(cls, "papers", ()) if cls else ()
    return {
        "name": str(name),
        "display_name": (getattr(cls, "display_name", "") if cls else "") or str(name),
        "papers": [
            {"title": p.title, "arxiv_id": p.arxiv_id, "url": p.url, "venue": p.venue, "bibtex": p.bibtex()}
            for p in papers
        ],
    }


def methods_help() -> str:
    """One line per registered method: name, display name and arXiv id (for ``--help``)."""
    from .base import _REGISTRY

    parts = []
    for name in sorted(_REGISTRY):
        facts = method_facts(name)
        cite = ", ".join(f"arXiv {p['arxiv_id']}" for p in facts["papers"])
        parts.append(f"{name} ({facts['display_name']}{'; ' + cite if cite else ''})")
    return "; ".join(parts)
