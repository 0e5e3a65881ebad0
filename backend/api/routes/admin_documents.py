"""Admin: KYC documents waiting for review, their content, and the decision."""

from __future__ import annotations

from fastapi import APIRouter, Response

from backend.api.deps import AdminUser, ObjectIdPath, PageDep, ServicesDep
from backend.api.schemas import PageOf, signed_in
from backend.models.documents import DocumentRead, DocumentReview
from backend.services.documents import ALLOWED_MIME_TYPES, safe_filename

router = APIRouter(prefix="/admin/documents", tags=["admin: documents"])

DocumentId = ObjectIdPath

#: The content types a document download can have, for the OpenAPI document.
DOWNLOAD_CONTENT = {
    mime: {"schema": {"type": "string", "format": "binary"}} for mime in sorted(ALLOWED_MIME_TYPES)
}


def attachment(content: bytes, *, mime_type: str, filename: str) -> Response:
    """A download under the stored name reduced to safe ASCII, in both `filename` and the RFC
    5987 `filename*`: a name stored before uploads were cleaned may hold a bidi override
    (U+202E) that makes an `.exe` name read as a `.pdf` one."""
    name = safe_filename(filename)
    return Response(content=content, media_type=mime_type, headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}",
        "X-Content-Type-Options": "nosniff",
    })


@router.get(
    "/pending",
    summary="Documents waiting for review, oldest first",
    response_model=PageOf[DocumentRead],
    responses=signed_in(),
)
async def pending_documents(admin: AdminUser, services: ServicesDep,
                            pagination: PageDep) -> PageOf[DocumentRead]:
    page = await services.documents.pending(page=pagination.page,
                                            page_size=pagination.page_size)
    return PageOf[DocumentRead].of(page, DocumentRead.model_validate)


@router.get(
    "/{document_id}/content",
    summary="A document's content, checked against its SHA-256",
    response_class=Response,
    responses={200: {"content": DOWNLOAD_CONTENT, "description": "The file"},
               **signed_in(404)},
)
async def document_content(document_id: DocumentId, admin: AdminUser,
                           services: ServicesDep) -> Response:
    document = await services.documents.get(document_id)
    content = await services.documents.download(document)
    return attachment(content, mime_type=document.mime_type,
                      filename=document.original_filename)


@router.post(
    "/{document_id}/review",
    summary="Verify or reject a pending document (a rejection needs a reason)",
    response_model=DocumentRead,
    responses=signed_in(404, 409),
)
async def review_document(document_id: DocumentId, body: DocumentReview, admin: AdminUser,
                          services: ServicesDep) -> DocumentRead:
    return DocumentRead.model_validate(await services.documents.review(
        document_id, body.verification_status, actor=admin.actor, reason=body.reason))
