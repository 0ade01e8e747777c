from django.urls import include, path

from hospitals import accounts, views

account_patterns = (
    [
        path("login/", accounts.LoginView.as_view(), name="login"),
        path("logout/", accounts.LogoutView.as_view(), name="logout"),
        path("password/", accounts.PasswordChangeView.as_view(), name="password_change"),
        path("second-factor/setup/", accounts.otp_setup, name="otp_setup"),
        path("second-factor/verify/", accounts.otp_verify, name="otp_verify"),
    ],
    "accounts",
)

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/", include(account_patterns)),
    path("hospitals/", views.hospital_list, name="hospital_list"),
    path("hospitals/<int:pk>/", views.hospital_detail, name="hospital_detail"),
    path("staff/", views.staff_list, name="staff_list"),
    path("staff/new/", views.staff_create, name="staff_create"),
    path("staff/<int:pk>/", views.staff_detail, name="staff_detail"),
    path("staff/<int:pk>/deactivate/", views.staff_deactivate, name="staff_deactivate"),
    path("staff/<int:pk>/activate/", views.staff_activate, name="staff_activate"),
    path("staff/<int:pk>/reset-second-factor/", views.staff_second_factor_reset, name="staff_second_factor_reset"),
    path("audit/", views.audit_list, name="audit_list"),
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
