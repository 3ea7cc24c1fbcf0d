# One image for every Python service of the stack (web, workers, migrate, flower).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PYTHONPATH=/srv
# Inside a container the published ports decide who can reach it; compose publishes on loopback.
ENV WEB_BIND=0.0.0.0:8001
WORKDIR /srv
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --system --uid 1000 safety && mkdir -p /var/run/safety-metrics && chown safety /var/run/safety-metrics
USER safety
EXPOSE 8001 5555
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
