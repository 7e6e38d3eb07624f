"""Tray icons drawn at run time with QPainter: one shield per state, told apart by colour AND
glyph (staff with colour-blindness must still see the difference), no image files to ship."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPainterPath, QPen, QPixmap

from gui.model import TrayState

SIZES = (16, 20, 24, 32, 48, 64)

COLOURS: dict[TrayState, str] = {
    TrayState.PROTECTED: "#2e7d32",  # green
    TrayState.ATTENTION: "#f9a825",  # amber
    TrayState.HQ_UNREACHABLE: "#546e7a",  # slate: still working, just alone
    TrayState.AGENT_NOT_RUNNING: "#c62828",  # red
    TrayState.NOT_SIGNED_IN: "#1565c0",  # blue
}


def _shield(size: float) -> QPainterPath:
    s = size
    path = QPainterPath()
    path.moveTo(s * 0.50, s * 0.04)
    path.lineTo(s * 0.90, s * 0.18)
    path.cubicTo(s * 0.90, s * 0.60, s * 0.75, s * 0.82, s * 0.50, s * 0.96)
    path.cubicTo(s * 0.25, s * 0.82, s * 0.10, s * 0.60, s * 0.10, s * 0.18)
    path.closeSubpath()
    return path


def _pen(colour: str, width: float) -> QPen:
    pen = QPen(QColor(colour), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _check(painter: QPainter, s: float, colour: str = "white") -> None:
    painter.setPen(_pen(colour, s * 0.10))
    painter.drawPolyline([QPointF(s * 0.30, s * 0.50), QPointF(s * 0.45, s * 0.65), QPointF(s * 0.70, s * 0.36)])


def _exclamation(painter: QPainter, s: float) -> None:
    painter.setPen(_pen("#212121", s * 0.11))
    painter.drawLine(QPointF(s * 0.50, s * 0.28), QPointF(s * 0.50, s * 0.56))
    painter.drawPoint(QPointF(s * 0.50, s * 0.74))


def _cross(painter: QPainter, s: float) -> None:
    painter.setPen(_pen("white", s * 0.10))
    painter.drawLine(QPointF(s * 0.34, s * 0.32), QPointF(s * 0.66, s * 0.64))
    painter.drawLine(QPointF(s * 0.66, s * 0.32), QPointF(s * 0.34, s * 0.64))


def _person(painter: QPainter, s: float) -> None:
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("white"))
    painter.drawEllipse(QPointF(s * 0.50, s * 0.36), s * 0.11, s * 0.11)
    painter.drawPie(QRectF(s * 0.30, s * 0.50, s * 0.40, s * 0.36), 0, 180 * 16)


def _offline_badge(painter: QPainter, s: float) -> None:
    """A small orange disc with a slash: 'no line to HQ'."""
    painter.setPen(_pen("white", s * 0.04))
    painter.setBrush(QColor("#ef6c00"))
    painter.drawEllipse(QPointF(s * 0.76, s * 0.76), s * 0.20, s * 0.20)
    painter.setPen(_pen("white", s * 0.06))
    painter.drawLine(QPointF(s * 0.66, s * 0.86), QPointF(s * 0.86, s * 0.66))


def state_image(state: TrayState, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(_pen("#ffffff", max(1.0, size * 0.03)))
        painter.setBrush(QColor(COLOURS[state]))
        painter.drawPath(_shield(size))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if state is TrayState.PROTECTED:
            _check(painter, size)
        elif state is TrayState.ATTENTION:
            _exclamation(painter, size)
        elif state is TrayState.HQ_UNREACHABLE:
            _check(painter, size)
            _offline_badge(painter, size)
        elif state is TrayState.AGENT_NOT_RUNNING:
            _cross(painter, size)
        else:
            _person(painter, size)
    finally:
        painter.end()
    return image


@cache
def state_icon(state: TrayState) -> QIcon:
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(QPixmap.fromImage(state_image(state, size)))
    return icon
