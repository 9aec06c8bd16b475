# One command to run it, one to test it. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint install clean prod

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	DJANGO_DEBUG=1 $(PY) manage.py migrate --no-input
	DJANGO_DEBUG=1 $(PY) manage.py ensure_support_login
	@echo ""
	@echo "  Signup:          http://127.0.0.1:8000/signup/"
	@echo "  Support console: http://127.0.0.1:8000/admin/  (login above)"
	@echo "  Break things:    $(PY) manage.py sandbox provisioning error"
	@echo ""
	DJANGO_DEBUG=1 $(VENV)/bin/honcho start

# Production on this machine: needs DJANGO_SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL (and
# usually REDIS_URL, EMAIL_*) in the environment; see docs/production.md.
prod: install
	$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.production start -p $${PORT:-8000}

test: install
	$(PY) -m pytest --ds=config.test_settings

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
