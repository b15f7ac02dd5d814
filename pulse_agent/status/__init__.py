"""The status page: what it may show (page.py, pure), its queries (sql.py), its HTML and badges (html.py, badge.py)."""
