from django.urls import path

from contacts import api

urlpatterns = [
    path("contacts/bulk/", api.ContactBulkApi.as_view(), name="contacts-bulk"),
    path("products/bulk/", api.ProductBulkApi.as_view(), name="products-bulk"),
    path("orders/bulk/", api.OrderBulkApi.as_view(), name="orders-bulk"),
    path("events/bulk/", api.EventBulkApi.as_view(), name="events-bulk"),
    path("contacts/", api.ContactListApi.as_view(), name="contact-list"),
    # path: external ids may contain slashes ("shop/123").
    path("contacts/<path:external_id>/", api.ContactDetailApi.as_view(), name="contact-detail"),
]
