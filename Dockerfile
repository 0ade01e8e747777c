# One image for web (ASGI), worker, beat and the DICOM listener; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MHOSPITAL_VAR_DIR=/var/lib/mhospital
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mhospital mhospital
COPY hospitals hospitals
COPY patients patients
COPY consultations consultations
COPY diagnostics diagnostics
COPY devices devices
RUN pip install --no-cache-dir .
COPY . .
RUN DJANGO_ENV=production SECRET_KEY=build-only ALLOWED_HOSTS=build python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 mhospital && mkdir -p /var/lib/mhospital && chown mhospital /var/lib/mhospital
USER mhospital
EXPOSE 8000 11112
# No per-message compression on WebSockets: a call page's signals are small, and deflate state cost ~100 KB per socket.
CMD ["uvicorn", "mhospital.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--ws", "websockets-sansio", "--ws-per-message-deflate", "false"]
